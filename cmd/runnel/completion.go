package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

// Shell completion comes from cobra: the script a shell loads calls
// "runnel __complete WORDS..." and offers what it prints. Commands and
// flags complete by themselves; this file adds topic and group names
// (read from the log), the words of choice flags, and the command that
// prints the scripts.

func init() {
	register(&command{
		name:    "completion",
		args:    "bash|zsh|fish|powershell",
		summary: "print a shell script that completes commands, flags, topics and groups",
		describe: `
Prints the completion script for the shell. Topic and group names are read
from the log (-dir, $RUNNEL_DIR or ./runnel-data) as you type. To load it:

  bash        source <(runnel completion bash)    in ~/.bashrc (needs the
              bash-completion package)
  zsh         source <(runnel completion zsh)     in ~/.zshrc, after compinit
  fish        runnel completion fish | source
  powershell  runnel completion powershell | Out-String | Invoke-Expression

Completion offers flags in their two-dash form; one dash works as well.`,
		nargs:    [2]int{1, 1},
		complete: []argKind{argShell},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			switch args[0] {
			case "bash":
				return c.root.GenBashCompletionV2(c.stdout, true)
			case "zsh":
				return c.root.GenZshCompletion(c.stdout)
			case "fish":
				return c.root.GenFishCompletion(c.stdout, true)
			case "powershell":
				return c.root.GenPowerShellCompletionWithDesc(c.stdout)
			}
			return usagef("unknown shell %q: want bash, zsh, fish or powershell", args[0])
		},
	})
}

// argKind lists what a positional argument can be, for completion.
type argKind func(c *cli) []string

var (
	argTopic argKind = func(c *cli) []string { return logNames(c, (*runnel.Log).Topics) }
	argGroup argKind = func(c *cli) []string { return logNames(c, (*runnel.Log).ListGroups) }
	argShell argKind = func(*cli) []string { return []string{"bash", "zsh", "fish", "powershell"} }
	// argDir is a directory, which the shell completes.
	argDir argKind = nil
)

// logNames lists names in the log, or none if it cannot be opened:
// completion has nowhere to report an error.
func logNames(c *cli, list func(*runnel.Log) ([]string, error)) []string {
	var names []string
	c.withLog(func(l *runnel.Log) (err error) {
		names, err = list(l)
		return err
	})
	return names
}

// addCompletions makes leaf complete its positional arguments by kind
// (with many, those after them as more says, or as files if more is nil),
// -group and -topic with the log's groups and topics, and choice flags
// with their words.
func addCompletions(c *cli, leaf *cobra.Command, kinds []argKind, many bool, more argKind) {
	leaf.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		switch {
		case len(args) >= len(kinds) && many && more != nil:
			return more(c), cobra.ShellCompDirectiveNoFileComp
		case len(args) >= len(kinds) && many:
			return nil, cobra.ShellCompDirectiveDefault
		case len(args) >= len(kinds):
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if kinds[len(args)] == nil {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
		return kinds[len(args)](c), cobra.ShellCompDirectiveNoFileComp
	}
	leaf.Flags().VisitAll(func(f *pflag.Flag) {
		var words func() []string
		if ch, ok := f.Value.(interface{ Choices() []string }); ok {
			words = ch.Choices
		} else if f.Name == "group" {
			words = func() []string { return argGroup(c) }
		} else if f.Name == "topic" {
			words = func() []string { return argTopic(c) }
		} else {
			return
		}
		leaf.RegisterFlagCompletionFunc(f.Name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return words(), cobra.ShellCompDirectiveNoFileComp
		})
	})
}

// addGlobalCompletions completes the global flags' values, which every
// command takes (root's persistent flags, which a leaf's own flags do not
// list): -backend's choices, and directories for -dir.
func addGlobalCompletions(root *cobra.Command) {
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if ch, ok := f.Value.(interface{ Choices() []string }); ok {
			root.RegisterFlagCompletionFunc(f.Name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return ch.Choices(), cobra.ShellCompDirectiveNoFileComp
			})
		}
	})
	root.RegisterFlagCompletionFunc("dir", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
}
