package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Help texts: the list of commands, a group's subcommands, one command's
// flags, and the short reminder printed after a usage mistake.

// helpText is what -help prints for cmd: the root, a group, or a command.
func helpText(cmd *cobra.Command) string {
	switch {
	case !cmd.HasParent():
		return topUsage()
	case cmd.HasSubCommands():
		return groupUsage(cmd)
	}
	return cmdUsage(cmd)
}

// helpCommand is "runnel help [COMMAND]".
func helpCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the commands, or one command's arguments and flags",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _, err := cmd.Root().Find(args)
			if err != nil || target == nil {
				target = cmd.Root()
			}
			fmt.Fprint(c.stdout, helpText(target))
			return nil
		},
	}
}

// synopsis is the usage line(s) of a command: its path and arguments.
func synopsis(cmd *cobra.Command) string {
	return strings.TrimSpace(cmd.CommandPath() + strings.TrimPrefix(cmd.Use, cmd.Name()))
}

// shortUsage follows a usage mistake: the usage line and where to read
// more, not the whole help.
func shortUsage(cmd *cobra.Command) string {
	var b strings.Builder
	switch {
	case !cmd.HasParent():
		b.WriteString("usage: runnel [-dir DIR] COMMAND [ARGS]\n")
	case cmd.HasSubCommands():
		return groupUsage(cmd)
	default:
		fmt.Fprintf(&b, "usage: %s\n", synopsis(cmd))
	}
	fmt.Fprintf(&b, "Run \"%s -help\" for more.\n", cmd.CommandPath())
	return b.String()
}

func topUsage() string {
	var b strings.Builder
	b.WriteString(`usage: runnel [-dir DIR] COMMAND [ARGS]

runnel works on the log directory -dir, else $RUNNEL_DIR, else ./runnel-data.
-backend auto|io_uring|pwrite picks the append path (auto: the one measured
faster).

commands:
`)
	for _, name := range commandOrder {
		if c := find(name); c != nil {
			fmt.Fprintf(&b, "  %-21s %s\n", c.name, c.summary)
		}
	}
	b.WriteString(`
Run "runnel COMMAND -help" for a command's arguments and flags.
Flags take one dash or two: -follow and --follow are the same.
`)
	return b.String()
}

func groupUsage(group *cobra.Command) string {
	var b strings.Builder
	lead := "usage:"
	for _, sub := range group.Commands() {
		if sub.Hidden || sub.Name() == "help" {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", lead, synopsis(sub))
		lead = "      "
	}
	fmt.Fprintf(&b, "\nRun \"%s SUBCOMMAND -help\" for details.\n", group.CommandPath())
	return b.String()
}

// flagTextColumn is where a flag's text starts in a -help flag list, at
// least two spaces after the flag and its value.
const flagTextColumn = 29

func cmdUsage(cmd *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", synopsis(cmd), cmd.Short)
	if cmd.Long != "" {
		fmt.Fprintf(&b, "\n%s\n", cmd.Long)
	}
	var flags []*pflag.Flag
	add := func(f *pflag.Flag) {
		if f.Name != "help" && !f.Hidden {
			flags = append(flags, f)
		}
	}
	cmd.LocalFlags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	b.WriteString("\nflags:\n")
	for _, f := range flags {
		arg, text := pflag.UnquoteUsage(f)
		head := "  -" + f.Name
		if f.Shorthand != "" {
			head = "  -" + f.Shorthand + ", -" + f.Name
		}
		if arg != "" {
			head += " " + arg
		}
		if showDefault(f) {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		if len(head) < flagTextColumn-1 {
			fmt.Fprintf(&b, "%-*s%s\n", flagTextColumn, head, text)
		} else { // too wide for the column: the text goes under it, aligned
			fmt.Fprintf(&b, "%s\n%*s%s\n", head, flagTextColumn, "", text)
		}
	}
	return b.String()
}

// showDefault reports whether a flag's default says more than "not set".
func showDefault(f *pflag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "[]":
		return false
	}
	return f.Name != "dir"
}
