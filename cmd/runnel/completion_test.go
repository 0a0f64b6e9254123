package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// completionLog is a log with topics and a group to complete.
func completionLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, dir, "", "topics", "create", "orders")
	must(t, dir, "", "topics", "create", "audit")
	must(t, dir, "", "groups", "reset", "billing", "orders", "-to-earliest")
	return dir
}

// TestCompletionRequests: what the shells' scripts ask ("runnel
// __complete WORDS... PARTIAL") is answered with commands, topics, groups,
// flags and flag values; Go-style flags earlier on the line are read.
func TestCompletionRequests(t *testing.T) {
	dir := completionLog(t)
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"to"}, []string{"topics"}},
		{[]string{"topics", ""}, []string{"create", "list", "describe", "offsets", "alter", "delete", "delete-records"}},
		{[]string{"topics", "describe", ""}, []string{"audit", "orders"}},
		{[]string{"topics", "describe", "o"}, []string{"orders"}},
		{[]string{"consume", ""}, []string{"audit", "orders"}},
		{[]string{"consume", "orders", ""}, []string{"audit", "orders"}}, // more topics
		{[]string{"consume", "-t", ""}, []string{"audit", "orders"}},
		{[]string{"produce", "--topic", "a"}, []string{"audit"}},
		{[]string{"consume", "orders", "-group", ""}, []string{"billing"}},
		{[]string{"consume", "orders", "-G", ""}, []string{"billing"}},
		{[]string{"consume", "orders", "-format", ""}, []string{"value", "json"}},
		{[]string{"consume", "orders", "--fr"}, []string{"--from-beginning"}},
		{[]string{"produce", "orders", "-durability", "b"}, []string{"buffered"}},
		{[]string{"groups", "describe", ""}, []string{"billing"}},
		{[]string{"groups", "reset", "billing", ""}, []string{"audit", "orders"}},
		{[]string{"groups", "reset", "billing", "orders", ""}, nil},
		{[]string{"verify", "-format", ""}, []string{"text", "json"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell"}},
		{[]string{"topics", "list", "-backend", ""}, []string{"auto", "io_uring", "pwrite"}},
		{[]string{"-backend", "p"}, []string{"pwrite"}},
	}
	for _, tc := range cases {
		out := must(t, dir, "", append([]string{"__completeNoDesc"}, tc.words...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, ":") && l != "" {
				got = append(got, l)
			}
		}
		matching := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return !strings.HasPrefix(s, tc.words[len(tc.words)-1]) })
		if !slices.Equal(matching, tc.want) {
			t.Errorf("%q: %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestCompletionDirFlag: -dir, a flag of every command, completes to
// directories (the shell's own, which the directive asks for), before a
// command and after one.
func TestCompletionDirFlag(t *testing.T) {
	dir := completionLog(t)
	for _, words := range [][]string{{"-dir", ""}, {"consume", "orders", "-dir", ""}} {
		out := strings.TrimSpace(must(t, dir, "", append([]string{"__completeNoDesc"}, words...)...))
		want := fmt.Sprintf(":%d", cobra.ShellCompDirectiveFilterDirs)
		if last := out[strings.LastIndex(out, "\n")+1:]; last != want {
			t.Errorf("%q: answered %q, want the directive %s (directories)", words, out, want)
		}
	}
}

// TestCompletionBash loads "runnel completion bash" into bash and asks it
// to complete command lines, as pressing Tab does.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := completionLog(t)
	script := filepath.Join(t.TempDir(), "runnel.bash")
	if err := os.WriteFile(script, []byte(must(t, dir, "", "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		// COMP_WORDS as bash splits the line; then the completion
		// function fills COMPREPLY.
		var prog strings.Builder
		prog.WriteString(bashCompletionLib + "source " + script + "\nCOMP_WORDS=(")
		for _, w := range words {
			prog.WriteString("'" + w + "' ")
		}
		prog.WriteString(")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n")
		prog.WriteString("COMP_LINE='" + line + "'\nCOMP_POINT=${#COMP_LINE}\n__start_runnel\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", prog.String())
		cmd.Env = append(os.Environ(), "RUNNEL_DIR="+dir, "PATH="+filepath.Dir(binPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
		// (compopt complains on stderr outside a real Tab press.)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, stderr.String())
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				got = append(got, f[0]) // without the description
			}
		}
		return got
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"runnel topics describe ", []string{"audit", "orders"}},
		{"runnel topics describe au", []string{"audit"}},
		{"runnel consume orders -group ", []string{"billing"}},
		{"runnel consume orders -format j", []string{"json"}},
		{"runnel gro", []string{"groups"}},
		{"runnel groups ", []string{"list", "describe", "reset", "delete"}}, // as runnel help lists them
	} {
		if got := complete(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// bashCompletionLib loads the bash-completion package where it is
// installed, and otherwise defines the one function of it that the script
// uses, as the package does for "-n =: cur prev words cword".
const bashCompletionLib = `
if [ -r /usr/share/bash-completion/bash_completion ]; then
	source /usr/share/bash-completion/bash_completion
else
	_get_comp_words_by_ref() {
		cur="${COMP_WORDS[COMP_CWORD]}"
		prev="${COMP_WORDS[COMP_CWORD-1]}"
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}
fi
`

// TestCompletionScripts: every shell's script is there and asks runnel
// itself; zsh checks the syntax of its script where it is installed.
func TestCompletionScripts(t *testing.T) {
	dir := t.TempDir()
	for shell, mark := range map[string]string{
		"bash":       "complete -o default -F __start_runnel runnel",
		"zsh":        "#compdef runnel",
		"fish":       "complete -c runnel",
		"powershell": "Register-ArgumentCompleter",
	} {
		out := must(t, dir, "", "completion", shell)
		if !strings.Contains(out, mark) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s lacks %q", shell, mark)
		}
		if shell != "zsh" {
			continue
		}
		zsh, err := exec.LookPath("zsh")
		if err != nil {
			t.Log("no zsh to check the script's syntax with")
			continue
		}
		check := exec.Command(zsh, "-n", "-c", out)
		if msg, err := check.CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, msg)
		}
	}
	failing(t, runIn(t, dir, "", "completion", "tcsh"), 2, "want bash, zsh, fish or powershell")
}
