// Command runnel inspects and uses a runnel log directory: it creates and
// changes topics, produces records from standard input, consumes them to
// standard output (alone or in a consumer group), checks and repairs the
// files, and shows what is stored and how fast it moves.
//
//	go install github.com/runnel-log/runnel/cmd/runnel@latest
//
// The directory is -dir, else $RUNNEL_DIR, else ./runnel-data. Run
// "runnel help" for the commands, and "runnel COMMAND -help" for one.
//
// Exit status: 0 on success, 1 on failure (with a one-line message on
// standard error), 2 on a usage mistake (with the command's usage).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/runnel-log/runnel"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// command is one subcommand: "produce", or "topics create".
type command struct {
	name     string
	args     string // synopsis after the name, flags included
	summary  string
	describe string                 // longer help, shown by -help
	flags    func(fs *flag.FlagSet) // defines the command's own flags
	run      runFunc
	nargs    [2]int // min and max positional arguments
}

// runFunc runs a command with its parsed flags and positional arguments.
type runFunc func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error

var commands []*command

// commandOrder is the order of the commands in the usage: from making a
// topic to looking inside one.
var commandOrder = []string{
	"topics create", "topics list", "topics describe", "topics alter", "topics delete",
	"produce", "consume",
	"groups list", "groups describe", "groups reset",
	"verify", "repair", "dump", "stat",
}

func register(c *command) { commands = append(commands, c) }

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
	backend string // Options.Backend: "" (auto), "io_uring" or "pwrite"
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// usageError is a mistake in the command line: exit 2 with usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}

	global := flag.NewFlagSet("runnel", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.StringVar(&c.dir, "dir", "", "")
	global.StringVar(&c.backend, "backend", "auto", "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, topUsage())
			return 0
		}
		fmt.Fprintf(c.stderr, "runnel: %v\n%s", err, topUsage())
		return 2
	}
	switch c.backend {
	case "auto":
		c.backend = runnel.BackendAuto
	case runnel.BackendIOURing, runnel.BackendPwrite:
	default:
		fmt.Fprintf(c.stderr, "runnel: -backend %q: want auto, io_uring or pwrite\n%s", c.backend, topUsage())
		return 2
	}
	args = global.Args()
	if len(args) == 0 {
		fmt.Fprint(c.stderr, topUsage())
		return 2
	}
	name := args[0]
	args = args[1:]
	if name == "help" {
		if len(args) > 0 {
			if cmd := lookup(args); cmd != nil {
				fmt.Fprint(c.stdout, cmdUsage(cmd, newFlagSet(c, cmd)))
				return 0
			}
		}
		fmt.Fprint(c.stdout, topUsage())
		return 0
	}
	// Two-word commands: "topics create", "groups list".
	if cmd := find(name); cmd == nil && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if find(name+" "+args[0]) != nil {
			name, args = name+" "+args[0], args[1:]
		}
	}
	cmd := find(name)
	if cmd == nil {
		if group := subcommands(name); len(group) > 0 {
			if len(args) > 0 && (args[0] == "-help" || args[0] == "-h" || args[0] == "--help") {
				fmt.Fprint(c.stdout, groupUsage(name, group))
				return 0
			}
			msg := "missing subcommand"
			if len(args) > 0 {
				msg = fmt.Sprintf("unknown subcommand %q", args[0])
			}
			fmt.Fprintf(c.stderr, "runnel %s: %s\n%s", name, msg, groupUsage(name, group))
			return 2
		}
		fmt.Fprintf(c.stderr, "runnel: unknown command %q\n%s", name, topUsage())
		return 2
	}
	fs := newFlagSet(c, cmd)
	pos, err := parseInterspersed(fs, args)
	if err == nil && (len(pos) < cmd.nargs[0] || len(pos) > cmd.nargs[1]) {
		switch {
		case len(pos) < cmd.nargs[0]:
			err = usagef("missing argument")
		default:
			err = usagef("unexpected argument %q", pos[cmd.nargs[1]])
		}
	}
	if err == nil {
		err = cmd.run(ctx, c, fs, pos)
	}
	return c.exit(cmd, fs, err)
}

// exit turns a command's error into the exit status and message.
func (c *cli) exit(cmd *command, fs *flag.FlagSet, err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, cmdUsage(cmd, fs))
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "runnel %s: %s\n%s", cmd.name, ue.msg, cmdUsage(cmd, fs))
		return 2
	}
	msg := strings.TrimPrefix(err.Error(), "runnel: ")
	fmt.Fprintf(c.stderr, "runnel %s: %s\n", cmd.name, strings.ReplaceAll(msg, "\n", "; "))
	return 1
}

func lookup(words []string) *command {
	if len(words) > 1 {
		if cmd := find(words[0] + " " + words[1]); cmd != nil {
			return cmd
		}
	}
	return find(words[0])
}

func subcommands(group string) []*command {
	var out []*command
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

func newFlagSet(c *cli, cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.dir, "dir", c.dir, "log `directory` (default $RUNNEL_DIR, else ./runnel-data)")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	return fs
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (runnel consume TOPIC -follow), as the usage
// lines show them; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func topUsage() string {
	var b strings.Builder
	b.WriteString(`usage: runnel [-dir DIR] [-backend auto|io_uring|pwrite] COMMAND [ARGS]

runnel works on the log directory -dir, else $RUNNEL_DIR, else ./runnel-data.
-backend picks the append path (default auto: the one measured faster).

commands:
`)
	for _, name := range commandOrder {
		if c := find(name); c != nil {
			fmt.Fprintf(&b, "  %-17s %s\n", c.name, c.summary)
		}
	}
	b.WriteString("\nRun \"runnel COMMAND -help\" for a command's arguments and flags.\n")
	return b.String()
}

func groupUsage(group string, cmds []*command) string {
	var b strings.Builder
	for i, c := range cmds {
		lead := "usage:"
		if i > 0 {
			lead = "      "
		}
		fmt.Fprintf(&b, "%s %s\n", lead, strings.TrimSpace("runnel "+c.name+" "+c.args))
	}
	fmt.Fprintf(&b, "\nRun \"runnel %s SUBCOMMAND -help\" for details.\n", group)
	return b.String()
}

func cmdUsage(cmd *command, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", strings.TrimSpace("runnel "+cmd.name+" "+cmd.args), cmd.summary)
	if cmd.describe != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(cmd.describe))
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	b.WriteString("\nflags:\n")
	for _, n := range names {
		f := fs.Lookup(n)
		arg, text := flag.UnquoteUsage(f)
		head := "  -" + n
		if arg != "" {
			head += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && n != "dir" {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "%-28s %s\n", head, text)
	}
	return b.String()
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

// open opens the log. Only commands that create things may create the
// directory: a typo in -dir should not leave an empty log behind.
func (c *cli) open(create bool, opts *runnel.Options) (*runnel.Log, error) {
	dir := c.logDir()
	if !create {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no log at %s (set -dir or RUNNEL_DIR; \"runnel topics create\" makes one)", dir)
		}
	}
	var o runnel.Options
	if opts != nil {
		o = *opts
	}
	o.Backend = c.backend
	return runnel.Open(dir, &o)
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

// listNames is the run of a command that prints what list returns, one
// name per line.
func listNames(list func(*runnel.Log) ([]string, error)) runFunc {
	return func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error {
		return c.withLog(func(l *runnel.Log) error {
			names, err := list(l)
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintln(c.stdout, n)
			}
			return nil
		})
	}
}

// describeWith is the run of a command that looks up its one argument with
// get and prints what it finds with print.
func describeWith[T any](get func(*runnel.Log, string) (T, error), print func(io.Writer, T)) runFunc {
	return func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) error {
		return c.withLog(func(l *runnel.Log) error {
			info, err := get(l, args[0])
			if err != nil {
				return err
			}
			print(c.stdout, info)
			return nil
		})
	}
}

// closeLog closes l, keeping the first error.
func closeLog(l *runnel.Log, err *error) {
	if cerr := l.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
