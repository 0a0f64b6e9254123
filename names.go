package runnel

import (
	"fmt"

	"github.com/runnel-log/runnel/internal/names"
)

// validateName applies Kafka's topic-name rule (names.Check) to every
// name that becomes a path component, so no name can escape the log
// directory.
func validateName(kind, name string) error {
	if err := names.Check(kind, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return nil
}
