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
