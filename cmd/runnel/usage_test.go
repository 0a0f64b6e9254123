package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestFlagValueNames: a flag's value is named alike in a command's usage
// line and in its -help flag list ("-segment-bytes N" in both, not N in
// one and "size" or "int" in the other).
func TestFlagValueNames(t *testing.T) {
	for _, c := range commands {
		fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
		if c.flags != nil {
			c.flags(fs)
		}
		fs.VisitAll(func(f *pflag.Flag) {
			arg, _ := pflag.UnquoteUsage(f)
			if arg == "" {
				return // a switch: no value to name
			}
			names := []string{f.Name}
			if f.Shorthand != "" {
				names = append(names, f.Shorthand)
			}
			for _, name := range names {
				m := regexp.MustCompile(`(?:^|[\s\[(|])-` + regexp.QuoteMeta(name) + ` ([^\s\])]+)`).FindStringSubmatch(c.args)
				if m != nil && m[1] != arg && !slices.Contains(strings.Split(m[1], "|"), arg) {
					t.Errorf("runnel %s: the usage line has -%s %s, the flag list -%s %s", c.name, name, m[1], f.Name, arg)
				}
			}
		})
	}
}

// TestFlagListColumns: in every command's -help flag list, each flag's
// text starts in one column, after at least two spaces, or, when the flag
// and its value are wider than that column, on the next line there; and
// a flag whose value is a list of choices ("-backend
// auto|io_uring|pwrite") does not repeat the list in its text.
func TestFlagListColumns(t *testing.T) {
	indent := strings.Repeat(" ", flagTextColumn)
	for _, name := range commandOrder {
		out := must(t, t.TempDir(), "", append(strings.Fields(name), "-help")...)
		_, list, ok := strings.Cut(out, "\nflags:\n")
		if !ok {
			t.Fatalf("runnel %s -help: no flag list:\n%s", name, out)
		}
		lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
		for i, line := range lines {
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			head, text := line, ""
			if len(line) > flagTextColumn && line[flagTextColumn-2:flagTextColumn] == "  " && line[flagTextColumn] != ' ' {
				head, text = strings.TrimRight(line[:flagTextColumn], " "), line[flagTextColumn:]
			} else if i+1 < len(lines) && strings.HasPrefix(lines[i+1], indent) && len(line) >= flagTextColumn-1 && !strings.Contains(strings.TrimSpace(line), "  ") {
				text = strings.TrimPrefix(lines[i+1], indent)
			} else {
				t.Errorf("runnel %s -help: the flag's text is not in column %d:\n%s", name, flagTextColumn+1, line)
				continue
			}
			if fields := strings.Fields(head); len(fields) > 1 {
				if arg := fields[len(fields)-1]; strings.Contains(arg, "|") && strings.Contains(text, arg) {
					t.Errorf("runnel %s -help: %s says its choices twice:\n%s", name, fields[0], line)
				}
			}
		}
	}
}
