package names

import (
	"strings"
	"testing"
)

func TestGroupDir(t *testing.T) {
	for name, dir := range map[string]string{
		// Names of the topic rule keep their directory names.
		"orders": "orders", "a.b_c-D9": "a.b_c-D9", "..a": "..a",
		strings.Repeat("x", MaxLen): strings.Repeat("x", MaxLen),
		// Any other is escaped byte by byte, '%' included.
		"app:prod/1 x": "app%3Aprod%2F1%20x", "a%3Ab": "a%253Ab", "%": "%25",
		".": "%2E", "..": "%2E%2E", "a:.": "a%3A.", "../x": "..%2Fx",
		"é": "%C3%A9", "tab\tnul\x00": "tab%09nul%00",
	} {
		if err := CheckGroup(name); err != nil {
			t.Errorf("CheckGroup(%.20q): %v", name, err)
		}
		if got := GroupDir(name); got != dir {
			t.Errorf("GroupDir(%.20q) = %.30q, want %.30q", name, got, dir)
		}
		if got, ok := GroupFromDir(dir); !ok || got != name {
			t.Errorf("GroupFromDir(%.30q) = %.20q, %v, want %.20q", dir, got, ok, name)
		}
	}
}

// Names a naive escape would store in one directory have a directory
// each: escaping only the bytes outside the rule but not '%' would store
// "a:b" and "a%3Ab" both as "a%3Ab"; escaping with either case of hex, or
// escaping a byte that needs none, would give one name two directories.
func TestGroupDirNoCollisions(t *testing.T) {
	names := []string{"a:b", "a%3Ab", "a%3ab", "a%253Ab", "a%", "a%25", "A:B", ".", "..", "%2E", "%2E%2E", "..a", "a b", "a+b", "a%20b", "ab", "a\x00b"}
	seen := map[string]string{}
	for _, name := range names {
		dir := GroupDir(name)
		if other, ok := seen[dir]; ok {
			t.Errorf("%q and %q share directory %q", name, other, dir)
		}
		seen[dir] = name
	}
	// No name is stored under a directory name with a '%' that is not its
	// escape, so each of these is no group's directory.
	for _, dir := range []string{"a%3ab", "%41", "a%2Eb", "a%", "a%3", "a%G0", "%FF", "%C3", "%", ".", "..", "", "a/b", "a b", "%2E%2Ea", strings.Repeat("%25", MaxLen/3+1), strings.Repeat("x", MaxLen+1)} {
		if name, ok := GroupFromDir(dir); ok {
			t.Errorf("GroupFromDir(%.30q) = %q, want none", dir, name)
		}
	}
}

func TestCheckGroupRefuses(t *testing.T) {
	for _, name := range []string{"", "\xff", "a\xc3", strings.Repeat("x", MaxLen+1), strings.Repeat(":", MaxLen/3+1), strings.Repeat("é", MaxLen/6+1)} {
		err := CheckGroup(name)
		if err == nil {
			t.Errorf("CheckGroup(%.20q) took it", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "group name ") || len(err.Error()) > 300 {
			t.Errorf("CheckGroup(%.20q): %q", name, err)
		}
	}
	// The longest names taken: MaxLen bytes as a directory name.
	for _, name := range []string{strings.Repeat(":", MaxLen/3), strings.Repeat("é", MaxLen/6) + "xyz"} {
		if err := CheckGroup(name); err != nil {
			t.Errorf("CheckGroup(%.20q): %v", name, err)
		}
	}
}
