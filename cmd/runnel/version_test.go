package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goVersionM is what "go version -m" reads from the test's runnel binary:
// "go", "mod" (the main module's version), and each build setting.
func goVersionM(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", binPath).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	info := map[string]string{}
	for i, l := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(l), "\t")
		switch {
		case i == 0:
			_, info["go"], _ = strings.Cut(l, ": ")
		case len(f) >= 3 && f[0] == "mod":
			info["mod"] = f[2]
		case len(f) == 2 && f[0] == "build":
			k, v, _ := strings.Cut(f[1], "=")
			info[k] = v
		}
	}
	return info
}

// TestVersion: "runnel version", "runnel -version" and "--version" print
// the module version, Go version and platform; with VCS information in
// the build, the commit.
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	out := must(t, dir, "", "version")
	for _, args := range [][]string{{"-version"}, {"--version"}} {
		if got := must(t, dir, "", args...); got != out {
			t.Errorf("%q: %q, want %q", args, got, out)
		}
	}
	bi := goVersionM(t)
	want := "runnel " + bi["mod"] + " (github.com/runnel-log/runnel, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if rev := bi["vcs.revision"]; rev != "" {
		want += "commit " + rev + " of " + bi["vcs.time"]
		if bi["vcs.modified"] == "true" {
			want += ", with uncommitted changes"
		}
		want += "\n"
	}
	if out != want {
		t.Errorf("version: %q, want %q", out, want)
	}
}

// TestVersionFromCommit builds runnel from a clone of this repository with
// VCS stamping on, as "go install" does, and checks that version names
// the commit. (The test binary itself may be built without VCS data: in a
// git worktree, or with -buildvcs=false.)
func TestVersionFromCommit(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds runnel again from a clone (without the race detector, so a race pass adds nothing)")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git repository")
	}
	clone := filepath.Join(t.TempDir(), "runnel")
	if out, err := exec.Command(git, "clone", "-q", "--no-hardlinks", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	head, err := exec.Command(git, "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "runnel")
	// -trimpath: the clone's directory does not enter the build cache's
	// keys, so later runs build from the cache.
	build := exec.Command("go", "build", "-buildvcs=true", "-trimpath", "-o", bin, "./cmd/runnel")
	build.Dir = clone
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "commit " + strings.TrimSpace(string(head)) + " of "; !strings.Contains(string(out), want) || strings.Contains(string(out), "uncommitted") {
		t.Errorf("version of a build from a clean clone:\n%s\nwant %q", out, want)
	}
}
