// Command runnel inspects and uses a runnel log directory: it creates and
// changes topics, produces records from standard input or files, consumes
// them to standard output (alone or in a consumer group, as values, JSON or
// kcat-style format strings), checks and repairs the files, and shows what
// is stored and how fast it moves.
//
//	go install github.com/runnel-log/runnel/cmd/runnel@latest
//
// The directory is -dir, else $RUNNEL_DIR, else ./runnel-data. Run
// "runnel help" for the commands, and "runnel COMMAND -help" for one.
// Flags take one dash or two (-follow, --follow); one-letter flags also
// take their value attached, as in kcat (-K: for -K :).
//
// Exit status: 0 on success, 1 on failure (with a one-line message on
// standard error), 2 on a usage mistake (with the usage line).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// command is one subcommand: "produce", or "topics create". A command is
// one file whose init calls register; newTree makes the cobra command tree
// from them (a group command for each first word of a two-word name), so
// nothing else changes to add one. Flags are defined on a pflag.FlagSet,
// whose StringVar, BoolVar, IntVar... are the standard library's, plus
// ...VarP forms with a one-letter name; fs.Changed(name) tells whether a
// flag was given. Flags every command takes go in (*cli).globalFlags.
type command struct {
	name     string
	args     string // synopsis after the name, flags included
	summary  string
	describe string                  // longer help, shown by -help
	flags    func(fs *pflag.FlagSet) // defines the command's own flags
	run      runFunc
	nargs    [2]int    // min and max positional arguments (manyArgs: no max)
	complete []argKind // what each positional argument names, for shell completion
	// moreArgs is what the arguments after complete's name, with nargs'
	// manyArgs: nil for files.
	moreArgs argKind
	// topicFlag is how many times the command takes kcat's -t TOPIC
	// (-topic), each one of its first arguments; 0 for none.
	topicFlag int
}

// runFunc runs a command with its parsed flags (fs.Changed tells which
// were given) and positional arguments.
type runFunc func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error

var commands []*command

// manyArgs is nargs' maximum for a command that takes any number of
// arguments; shell completion offers moreArgs (else files) for those after
// the ones complete names.
const manyArgs = math.MaxInt

// commandOrder is the order of the commands in the usage: from making a
// topic to looking inside one.
var commandOrder = []string{
	"topics create", "topics list", "topics describe", "topics offsets", "topics alter", "topics delete", "topics delete-records",
	"produce", "consume",
	"groups list", "groups describe", "groups reset", "groups delete",
	"verify", "repair", "backup", "dump", "stat", "metrics", "serve",
	"completion", "version",
}

func register(c *command) { commands = append(commands, c) }

// orderOf is name's place in commandOrder, after it if it has none.
func orderOf(name string) int {
	if i := slices.Index(commandOrder, name); i >= 0 {
		return i
	}
	return len(commandOrder)
}

func find(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// cli is one invocation's shared state.
type cli struct {
	dir     string
	backend string // -backend: auto, io_uring or pwrite
	version bool   // -version, before any command
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	root    *cobra.Command // the command tree, for completion scripts
}

// globalFlags are the flags every command takes, before or after its name.
func (c *cli) globalFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.dir, "dir", "", "log directory `DIR` (default $RUNNEL_DIR, else ./runnel-data)")
	choiceVar(fs, &c.backend, "backend", "", []string{"auto", runnel.BackendIOURing, runnel.BackendPwrite},
		"append path; auto takes the one measured faster")
}

// usageError is a mistake in the command line: exit 2 with the usage line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal asks the command to stop cleanly (a group commits
	// what it printed); the next one kills, as the signal does by
	// default: a clean stop can hang, in a write to a reader that stopped
	// reading, say, and nothing else would end the command then.
	go func() {
		<-ctx.Done()
		stop()
	}()
	out := &outputWriter{w: os.Stdout}
	c := &cli{stdin: os.Stdin, stdout: out, stderr: os.Stderr}
	c.root = newTree(c)
	c.root.SetArgs(goStyleFlags(c.root, args))
	cmd, err := c.root.ExecuteContextC(ctx)
	if err == nil {
		err = out.failed()
	}
	return c.exit(cmd, err)
}

// newTree builds the cobra command tree from the registered commands: a
// group command ("topics") for each first word of a two-word name, and
// one leaf per command.
func newTree(c *cli) *cobra.Command {
	cobra.EnableCommandSorting = false // the registration order reads better
	root := &cobra.Command{
		Use:                   "runnel",
		Short:                 "a Kafka-style log in a local directory",
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:                  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case c.version:
				return printVersion(c.stdout, "text")
			case len(args) == 0:
				return errNoCommand
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return usageError{msg}
		},
	}
	c.globalFlags(root.PersistentFlags())
	addGlobalCompletions(root)
	root.Flags().BoolVar(&c.version, "version", false, "show the version and exit")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(c.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagError(err) })
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { fmt.Fprint(c.stdout, helpText(cmd)) })
	root.SetHelpCommand(helpCommand(c))
	root.InitDefaultHelpFlag()

	// In commandOrder, so that a group's subcommands list in its order
	// whichever file registers them.
	ordered := slices.Clone(commands)
	slices.SortStableFunc(ordered, func(a, b *command) int {
		return orderOf(a.name) - orderOf(b.name)
	})
	groups := map[string]*cobra.Command{}
	for _, cmd := range ordered {
		parent := root
		name := cmd.name
		if group, sub, ok := strings.Cut(cmd.name, " "); ok {
			if groups[group] == nil {
				groups[group] = newGroup(group)
				root.AddCommand(groups[group])
			}
			parent, name = groups[group], sub
		}
		parent.AddCommand(newLeaf(c, cmd, name))
	}
	return root
}

// errNoCommand is "runnel" alone: the list of commands, and exit 2.
var errNoCommand = errors.New("no command")

// newGroup is the command that holds two-word commands: "runnel topics"
// alone is a usage mistake that lists the subcommands.
func newGroup(name string) *cobra.Command {
	g := &cobra.Command{
		Use:                   name,
		DisableFlagsInUseLine: true,
		Args:                  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("missing subcommand")
			}
			return usagef("unknown subcommand %q", args[0])
		},
	}
	g.InitDefaultHelpFlag()
	return g
}

func newLeaf(c *cli, cmd *command, name string) *cobra.Command {
	var topics []string // -t, with topicFlag
	leaf := &cobra.Command{
		Use:                   strings.TrimSpace(name + " " + cmd.args),
		Short:                 cmd.summary,
		Long:                  strings.TrimSpace(cmd.describe),
		DisableFlagsInUseLine: true,
		Args:                  cobra.ArbitraryArgs,
		RunE: func(cc *cobra.Command, args []string) error {
			if len(topics) > cmd.topicFlag {
				return usagef("-topic given %d times: %s takes one topic", len(topics), cmd.name)
			}
			args = append(slices.Clone(topics), args...)
			switch {
			case len(args) < cmd.nargs[0]:
				return usagef("missing argument")
			case len(args) > cmd.nargs[1]:
				return usagef("unexpected argument %q", args[cmd.nargs[1]])
			}
			return cmd.run(cc.Context(), c, cc.Flags(), args)
		},
	}
	if cmd.flags != nil {
		cmd.flags(leaf.Flags())
	}
	if cmd.topicFlag > 0 {
		leaf.Flags().StringArrayVarP(&topics, "topic", "t", nil, "the topic `TOPIC`, as kcat -t, instead of the first argument")
	}
	leaf.InitDefaultHelpFlag()
	addCompletions(c, leaf, cmd.complete, cmd.nargs[1] == manyArgs, cmd.moreArgs)
	return leaf
}

// exit turns a command's error into the exit status and message.
func (c *cli) exit(cmd *cobra.Command, err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNoCommand):
		fmt.Fprint(c.stderr, helpText(cmd))
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s: %s\n%s", cmd.CommandPath(), ue.msg, shortUsage(cmd))
		return 2
	}
	// The library's errors start "runnel: ", and some with the command's
	// own name ("runnel: backup: ..."), which the line already says.
	msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "runnel: "), cmd.Name()+": ")
	if errors.Is(err, runnel.ErrTopicNotFound) {
		// Most often a topic not made yet, or a -dir that is not the one
		// meant: say which directory was looked in, and what to run.
		msg += fmt.Sprintf(" (in %s: runnel topics list shows its topics, runnel topics create makes one)", c.logDir())
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", cmd.CommandPath(), strings.ReplaceAll(msg, "\n", "; "))
	return 1
}

// logDir resolves the directory: -dir, $RUNNEL_DIR, ./runnel-data.
func (c *cli) logDir() string {
	if c.dir != "" {
		return c.dir
	}
	if d := os.Getenv("RUNNEL_DIR"); d != "" {
		return d
	}
	return "runnel-data"
}

// open opens the log. Only commands that create things may create it: a
// typo in -dir should not leave an empty log behind, nor turn a directory
// that exists (-dir ., -dir ~) into one, as runnel.Open would.
func (c *cli) open(create bool, opts *runnel.Options) (*runnel.Log, error) {
	dir := c.logDir()
	if !create {
		if err := checkLogDir(dir); err != nil {
			return nil, err
		}
	}
	var o runnel.Options
	if opts != nil {
		o = *opts
	}
	o.Backend = c.backend // -backend's choices were checked as it was parsed
	if c.backend == "auto" {
		o.Backend = runnel.BackendAuto
	}
	return runnel.Open(dir, &o)
}

// checkLogDir fails unless dir holds a log: runnel.format, which Open
// writes first, or, in a log older than that file, topics.
func checkLogDir(dir string) error {
	const hint = `(set -dir or RUNNEL_DIR; "runnel topics create" makes one)`
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no log at %s %s", dir, hint)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("no log at %s: it is a file %s", dir, hint)
	}
	for _, marker := range []string{"runnel.format", "topics"} {
		if _, err := os.Stat(filepath.Join(dir, marker)); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return fmt.Errorf("no log at %s: it has no runnel.format %s", dir, hint)
}

// withLog opens the existing log, runs fn on it and closes it, keeping the
// first error.
func (c *cli) withLog(fn func(l *runnel.Log) error) (err error) {
	l, err := c.open(false, nil)
	if err != nil {
		return err
	}
	defer closeLog(l, &err)
	return fn(l)
}

// closeLog closes l, keeping the first error.
func closeLog(l *runnel.Log, err *error) {
	if cerr := l.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
