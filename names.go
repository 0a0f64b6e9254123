package runnel

import "fmt"

// maxNameLen is Kafka's limit for topic names, used for groups too.
const maxNameLen = 249

// validateName applies Kafka's topic-name rule to every name that becomes
// a path component, so no name can escape the log directory.
func validateName(kind, name string) error {
	if name == "" || len(name) > maxNameLen || name == "." || name == ".." {
		return fmt.Errorf("%w: %s name %q must be 1-%d characters and not \".\" or \"..\"", ErrInvalidName, kind, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s name %q has %q; allowed are [a-zA-Z0-9._-]", ErrInvalidName, kind, name, c)
		}
	}
	return nil
}
