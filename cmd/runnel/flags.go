package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag syntax. pflag parses GNU-style flags (--follow, -K:, -o -5, flags
// between arguments, "--" to end them); runnel's flags have always been
// written the Go way (-follow, -key-sep=:), and both keep working.

// goStyleFlags rewrites each one-dash word that names a long flag of the
// command being called (-follow, -key-sep=:) to its two-dash form, and
// leaves the rest to pflag: one-letter flags with their value attached or
// in the next word (-K:, -o -5), values, arguments, everything after "--".
// A one-dash word that names neither a long flag nor a one-letter one is
// made two-dash too, so that the error names it whole (unknown flag
// --nope, not unknown shorthand 'n').
//
// When completing ("runnel __complete ... WORD"), the last word is left as
// typed: it is the one the shell asks about.
func goStyleFlags(root *cobra.Command, args []string) []string {
	completing := len(args) > 0 && strings.HasPrefix(args[0], cobra.ShellCompRequestCmd)
	out := make([]string, 0, len(args))
	cmd := root
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' || (completing && i == len(args)-1) {
			if sub := subcommand(cmd, a); sub != nil {
				cmd = sub
			}
			out = append(out, a)
			continue
		}
		dashes := 1
		if a[1] == '-' {
			dashes = 2
		}
		name, _, attached := strings.Cut(a[dashes:], "=")
		f := lookupFlag(cmd, name)
		if dashes == 1 {
			switch short := lookupShort(cmd, name); {
			case len(name) > 1 && f != nil:
				a = "-" + a
			case short != nil:
				f, attached = short, attached || len(name) > 1
			case len(name) > 1:
				a = "-" + a
			}
		}
		out = append(out, a)
		// A flag that takes a value takes the next word, whatever it is.
		if f != nil && f.NoOptDefVal == "" && !attached && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// subcommand returns cmd's subcommand called name, or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name {
			return sub
		}
	}
	return nil
}

// lookupFlag finds a long flag of cmd or one it inherits.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	return inheritedFlag(cmd, func(fs *pflag.FlagSet) *pflag.Flag { return fs.Lookup(name) })
}

// lookupShort finds the one-letter flag that word (after its dash) starts
// with.
func lookupShort(cmd *cobra.Command, word string) *pflag.Flag {
	if word == "" {
		return nil
	}
	return inheritedFlag(cmd, func(fs *pflag.FlagSet) *pflag.Flag { return fs.ShorthandLookup(word[:1]) })
}

// inheritedFlag looks in cmd's flags, then in its ancestors' persistent
// ones.
func inheritedFlag(cmd *cobra.Command, look func(*pflag.FlagSet) *pflag.Flag) *pflag.Flag {
	if f := look(cmd.Flags()); f != nil {
		return f
	}
	for p := cmd.Parent(); p != nil; p = p.Parent() {
		if f := look(p.PersistentFlags()); f != nil {
			return f
		}
	}
	return nil
}

// choice is a flag value that must be one of a few words; shell completion
// offers them.
type choice struct {
	value *string
	words []string
}

// choiceVar defines a flag whose value must be one of words; the first is
// the default.
func choiceVar(fs *pflag.FlagSet, p *string, name, shorthand string, words []string, usage string) {
	*p = words[0]
	fs.VarP(&choice{value: p, words: words}, name, shorthand, usage)
}

func (c *choice) String() string { return *c.value }
func (c *choice) Type() string   { return strings.Join(c.words, "|") }

func (c *choice) Set(s string) error {
	if !slices.Contains(c.words, s) {
		return fmt.Errorf("want %s", orList(c.words))
	}
	*c.value = s
	return nil
}

// Choices are the words completion offers for the flag.
func (c *choice) Choices() []string { return c.words }

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// outputFlag defines -format text|json, for commands whose output has a
// JSON form.
func outputFlag(fs *pflag.FlagSet, p *string) {
	choiceVar(fs, p, "format", "", []string{"text", "json"}, "output format: text, or json (one JSON document; one per line where there are several)")
}

// flagError words pflag's parse errors the way runnel's usage does: flags
// with one dash, numbers asked for as numbers.
func flagError(err error) error {
	var (
		notExist *pflag.NotExistError
		noValue  *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		num      *strconv.NumError
	)
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if s := notExist.GetSpecifiedShortnames(); s != "" {
			name = s
		}
		return usagef("flag provided but not defined: -%s", name)
	case errors.As(err, &noValue):
		return usagef("flag needs an argument: -%s", noValue.GetFlag().Name)
	case errors.As(err, &invalid):
		why := errors.Unwrap(err)
		if errors.As(err, &num) {
			why = errors.New("want a number")
		}
		return usagef("invalid value %q for %s: %v", invalid.GetValue(), flagNames(invalid.GetFlag()), why)
	}
	return usageError{err.Error()}
}

// flagNames is how an error names a flag: -count, or -n (-count) when it
// has a letter too (-nope is -n with the value "ope").
func flagNames(f *pflag.Flag) string {
	if f.Shorthand != "" {
		return fmt.Sprintf("-%s (-%s)", f.Shorthand, f.Name)
	}
	return "-" + f.Name
}
