package names

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Groups take any name Kafka takes for a group id, which is any non-empty
// string: "app:prod", "team/orders", "my group". A name that Check accepts
// is its own directory name, as it always was; any other is stored under
// its escape: each byte outside [a-zA-Z0-9._-], and each dot of "." and
// "..", written as '%' and two upper-case hex digits. '%' is never a
// character of a name Check accepts, so an escaped directory never stands
// for such a name, and the escape of one name is never that of another.

// CheckGroup applies the group-name rule: a non-empty string of valid
// UTF-8 whose directory name (GroupDir) has at most MaxLen bytes. UTF-8
// because Kafka's group ids are strings (a Java broker reads invalid
// bytes as U+FFFD, so two byte strings would be one group there), and
// JSON output and Prometheus labels carry only UTF-8. Its error begins
// "group name"; runnel wraps it in ErrInvalidName.
func CheckGroup(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("group name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("group name %.40q is not valid UTF-8", name)
	}
	if n := len(GroupDir(name)); n > MaxLen {
		return fmt.Errorf("group name %.40q is too long: its directory name takes %d bytes, at most %d (each byte outside [a-zA-Z0-9._-] takes three)", name, n, MaxLen)
	}
	return nil
}

// GroupDir returns the name of group name's directory: name itself if
// Check accepts it, its escape otherwise.
func GroupDir(name string) string {
	if Check("group", name) == nil {
		return name
	}
	dots := name == "." || name == ".."
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if c := name[i]; plainByte(c) && !(dots && c == '.') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// GroupFromDir returns the group whose directory is named dir, and false
// if dir is no group's directory name: neither a name Check accepts nor
// the escape GroupDir makes of a name CheckGroup accepts (a stray '%',
// lower-case hex, an escaped byte that needs none, invalid UTF-8 once
// decoded, a name too long).
func GroupFromDir(dir string) (string, bool) {
	if !strings.Contains(dir, "%") {
		return dir, Check("group", dir) == nil
	}
	name := make([]byte, 0, len(dir))
	for i := 0; i < len(dir); i++ {
		if dir[i] != '%' {
			name = append(name, dir[i])
			continue
		}
		if i+2 >= len(dir) {
			return "", false
		}
		hi, lo := strings.IndexByte(upperHex, dir[i+1]), strings.IndexByte(upperHex, dir[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		name = append(name, byte(hi<<4|lo))
		i += 2
	}
	s := string(name)
	if CheckGroup(s) != nil || GroupDir(s) != dir {
		return "", false
	}
	return s, true
}

const upperHex = "0123456789ABCDEF"

func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
