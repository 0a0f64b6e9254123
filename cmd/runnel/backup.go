package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

func init() {
	var format string
	var verify, crashImage bool
	register(&command{
		name:    "backup",
		args:    "DEST [-verify] [-crash-image] [-format text|json]",
		summary: "copy the log, consistently, while it is in use",
		describe: `
Copies the log into DEST, a directory that must not exist yet (its parent
must) or must be empty, while producers and consumers go on. The copy holds
every record committed when the backup began (so every one acknowledged),
the consumer groups' committed offsets, every topic's configuration and
ID, and the Kafka server's cluster id; it is a log directory like any
other: "runnel -dir DEST verify" finds no problem in it. To restore, stop
the processes using the log, put the copy where the log goes, and start
them again (docs/OPERATIONS.md has the details).

The log is only read: backup needs read permission on it, no more, and
never makes producers wait. Everything in the copy is synced before backup
exits 0. Until then the copy is built in DEST.incomplete-* (or, when DEST
exists, DEST/.incomplete-*), which a failed or interrupted backup removes.
Damage in the log fails the backup with the file and byte; "runnel verify"
and "runnel repair" come first then.

-verify also runs verify's checks over the copy before it is put in place.

-crash-image is for a log that was not shut down when its files were taken
(a file-system snapshot, a disk image), backed up in the same machine run
as the log it came from: what followed each partition's last synced
checkpoint may not have reached the image, and the copy is cut where a
recovery after a power loss would cut it, instead of failing at the hole.

With -format json it prints {"dest", "topics", "bytes", "partitions":
[{"topic", "partition", "start_offset", "next_offset", "segments",
"records", "bytes", "segments_removed", "left_out"}], "groups": [{"group",
"topic", "committed"}], "notes"}; a committed offset is null where the
group has none.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&verify, "verify", false, "check the copy with verify's checks before putting it in place")
			fs.BoolVar(&crashImage, "crash-image", false, "the log is a snapshot of one that was running: recover the copy as after a power loss")
			outputFlag(fs, &format)
		},
		nargs:    [2]int{1, 1},
		complete: []argKind{argDir},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) (err error) {
			// No retention from this process: a backup changes nothing.
			l, err := c.open(false, &runnel.Options{RetentionInterval: -1})
			if err != nil {
				return err
			}
			defer closeLog(l, &err)
			bar := newProgress("backup", 0, true, false)
			rep, err := l.Backup(ctx, args[0], &runnel.BackupOptions{Progress: bar.set, Verify: verify, CrashImage: crashImage})
			bar.done()
			if err != nil {
				return interrupted(ctx, err)
			}
			if format == "json" {
				return writeJSON(c.stdout, newJSONBackup(l.Dir(), rep))
			}
			printBackup(c.stdout, l.Dir(), rep)
			return nil
		},
	})
}

func printBackup(w io.Writer, dir string, rep runnel.BackupReport) {
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", relNote(dir, n))
	}
	var segs int
	var recs int64
	for _, pb := range rep.Partitions {
		segs += pb.Segments
		recs += pb.Records
	}
	groups := map[string]bool{}
	for _, g := range rep.Groups {
		groups[g.Group] = true
	}
	fmt.Fprintf(w, "copied %d topic%s, %d partition%s, %d segment%s, %d record%s, %s and the offsets of %d group%s into %s\n",
		len(rep.Topics), plural(len(rep.Topics)), len(rep.Partitions), plural(len(rep.Partitions)), segs, plural(segs),
		recs, plural(int(min(recs, 2))), humanBytes(rep.Bytes), len(groups), plural(len(groups)), rep.Dest)
}

// relNote shows the log's paths in a note relative to the log directory.
func relNote(dir, note string) string {
	return strings.ReplaceAll(note, strings.TrimSuffix(dir, "/")+"/", "")
}

type jsonBackup struct {
	Dest       string                `json:"dest"`
	Topics     []string              `json:"topics"`
	Bytes      int64                 `json:"bytes"`
	Partitions []jsonPartitionBackup `json:"partitions"`
	Groups     []jsonGroupBackup     `json:"groups"`
	Notes      []string              `json:"notes"`
}

type jsonPartitionBackup struct {
	Topic           string `json:"topic"`
	Partition       int    `json:"partition"`
	StartOffset     int64  `json:"start_offset"`
	NextOffset      int64  `json:"next_offset"`
	Segments        int    `json:"segments"`
	Records         int64  `json:"records"`
	Bytes           int64  `json:"bytes"`
	SegmentsRemoved int    `json:"segments_removed"`
	LeftOut         int64  `json:"left_out"`
}

type jsonGroupBackup struct {
	Group     string   `json:"group"`
	Topic     string   `json:"topic"`
	Committed []*int64 `json:"committed"`
}

func newJSONBackup(dir string, rep runnel.BackupReport) jsonBackup {
	j := jsonBackup{Dest: rep.Dest, Topics: append([]string{}, rep.Topics...), Bytes: rep.Bytes,
		Partitions: []jsonPartitionBackup{}, Groups: []jsonGroupBackup{}, Notes: []string{}}
	for _, pb := range rep.Partitions {
		j.Partitions = append(j.Partitions, jsonPartitionBackup(pb))
	}
	for _, g := range rep.Groups {
		jg := jsonGroupBackup{Group: g.Group, Topic: g.Topic, Committed: []*int64{}}
		for _, o := range g.Committed {
			jg.Committed = append(jg.Committed, known(o))
		}
		j.Groups = append(j.Groups, jg)
	}
	for _, n := range rep.Notes {
		j.Notes = append(j.Notes, relNote(dir, n))
	}
	return j
}
