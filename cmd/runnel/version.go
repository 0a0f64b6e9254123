package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

func init() {
	var format string
	register(&command{
		name:    "version",
		args:    "[-format text|json]",
		summary: "show runnel's version and how it was built",
		describe: `
Shows the module version (a release tag, a pseudo-version for a build from
a commit, or (devel)), the Go version and platform, and the version control
information recorded at build time: commit, commit time, and whether the
work tree had changes. "runnel -version" prints the same.`,
		flags: func(fs *pflag.FlagSet) { outputFlag(fs, &format) },
		nargs: [2]int{0, 0},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return printVersion(c.stdout, format)
		},
	})
}

// versionInfo is what the binary knows about its own build.
type versionInfo struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// null when the build carries no VCS information (go build
	// -buildvcs=false, or outside a repository).
	Revision  *string `json:"revision"`
	Time      *string `json:"time"`
	Modified  *bool   `json:"modified"`
	BuildInfo bool    `json:"build_info"` // false if the binary carries none
}

func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/runnel-log/runnel", Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.BuildInfo = true
	if bi.Main.Path != "" {
		v.Module, v.Version = bi.Main.Path, bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = &s.Value
		case "vcs.time":
			v.Time = &s.Value
		case "vcs.modified":
			modified := s.Value == "true"
			v.Modified = &modified
		}
	}
	return v
}

func printVersion(w io.Writer, format string) error {
	v := buildVersion()
	if format == "json" {
		return writeJSON(w, v)
	}
	fmt.Fprintf(w, "runnel %s (%s, %s %s)\n", v.Version, v.Module, v.Go, v.Platform)
	if v.Revision != nil {
		commit := "commit " + *v.Revision
		if v.Time != nil {
			commit += " of " + *v.Time
		}
		if v.Modified != nil && *v.Modified {
			commit += ", with uncommitted changes"
		}
		fmt.Fprintln(w, commit)
	}
	return nil
}
