// Package names holds the rules for the names runnel makes path components
// of (topics and groups), so that the root package and the Kafka server
// check a name alike, the server without reading anything, the one
// escape that makes a directory name of any group name (group.go), and
// the one spelling of a partition's directory (partition.go).
package names

import "fmt"

// MaxLen is Kafka's limit for topic names, and runnel's for a group's
// directory name (GroupDir).
const MaxLen = 249

// Check applies Kafka's topic-name rule: 1 to MaxLen characters of
// [a-zA-Z0-9._-], not "." or "..", so no name can escape the log
// directory. Its error says why name, a kind name ("topic", "group"),
// breaks it; runnel wraps it in ErrInvalidName.
func Check(kind, name string) error {
	if name == "" || len(name) > MaxLen || name == "." || name == ".." {
		return fmt.Errorf("%s name %q must be 1-%d characters and not \".\" or \"..\"", kind, name, MaxLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !plainByte(c) {
			return fmt.Errorf("%s name %q has %q; allowed are [a-zA-Z0-9._-]", kind, name, c)
		}
	}
	return nil
}
