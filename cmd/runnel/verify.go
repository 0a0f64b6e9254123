package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

func init() {
	var format string
	register(&command{
		name:    "verify",
		args:    "[TOPIC] [-format text|json]",
		summary: "check every frame, index and offsets file; exit 1 on a problem",
		describe: `
Reads every segment file of TOPIC (of every topic if none is given) and
checks each frame's checksum and commit byte, that offsets follow on, that
every sealed segment names the next, every index entry against the log,
and the consumer groups' offsets files. Each problem is printed with its
file and byte position. It changes nothing and may run while other
processes produce and consume.

Gaps a salvage left (see repair -salvage) are listed as known losses, not
problems. A group's committed offset past the end of its partition (as a
Kafka client's OffsetCommit may put it) or below its start (after
retention) is a note, not a problem.

With -format json it prints {"ok", "topics", "segments", "records",
"bytes", "partitions": [{"topic", "partition", "segments", "frames",
"records", "bytes", "start_offset", "next_offset", "lost"}], "problems":
[{"kind", "topic", "partition", "path", "pos", "offset", "to", "detail",
"repairable", "salvageable"}], "gaps": [{"topic", "partition", "path",
"pos", "from", "to"}], "notes"}, and still exits 1 if there are problems.`,
		flags:    func(fs *pflag.FlagSet) { outputFlag(fs, &format) },
		nargs:    [2]int{0, 1},
		complete: []argKind{argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				bar := newProgress("verify", 0, true, false)
				rep, err := l.Verify(ctx, topicArg(args), &runnel.VerifyOptions{Progress: bar.set})
				bar.done()
				if err != nil {
					return interrupted(ctx, err)
				}
				if format == "json" {
					if err := writeJSON(c.stdout, newJSONVerify(l.Dir(), rep)); err != nil {
						return err
					}
				} else {
					printVerify(c.stdout, l.Dir(), rep)
				}
				if !rep.OK() {
					return fmt.Errorf("found %d problem%s", len(rep.Problems), plural(len(rep.Problems)))
				}
				return nil
			})
		},
	})
	var salvage bool
	register(&command{
		name:    "repair",
		args:    "[TOPIC] [-salvage]",
		summary: "cut torn tails and rebuild indexes; with -salvage, turn damage into gaps",
		describe: `
Verifies TOPIC (every topic if none is given), then fixes what can be fixed
without losing a committed record: it cuts off what writers that died left
past the end of the data, rebuilds index files that are missing or
disagree with their segment, finishes the delete of a topic whose
DeleteTopic died half way, and removes the files of deleted topics that a
delete which died or failed left in trash/ (opening the log removes them
too). A partition marked deleted that no DeleteTopic
meant to delete (damage to its partition.meta, or a delete by a runnel
from before delete intents that died) gets its mark cleared, and is used
again with its records. Damage inside committed data is reported and left
alone (exit 1). Producers wait while a partition is repaired.

With -salvage it also fixes damage inside committed data, at the cost of
the records it made unreadable: their offsets become a gap, every later
record keeps its offset and is readable again, and consumers skip the gap.
It prints the offsets each partition lost. "runnel verify" afterwards lists
the gaps as known losses and exits 0.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&salvage, "salvage", false, "replace damage inside committed data with gaps of lost offsets")
		},
		nargs:    [2]int{0, 1},
		complete: []argKind{argTopic},
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			return c.withLog(func(l *runnel.Log) error {
				bar := newProgress("repair", 0, true, false)
				rep, err := l.Repair(ctx, topicArg(args), &runnel.RepairOptions{Progress: bar.set, Salvage: salvage})
				bar.done()
				for _, a := range rep.Actions {
					fmt.Fprintf(c.stdout, "%s: %s\n", rel(l.Dir(), a.Path), actionText(a))
				}
				printLosses(c.stdout, rep.Actions)
				if err != nil {
					return interrupted(ctx, err)
				}
				for _, p := range rep.Remaining {
					fmt.Fprintf(c.stdout, "not repaired: %s\n", problemText(l.Dir(), p))
				}
				// -salvage is named only for problems it mends: not for
				// a damaged log-start file, offsets file or topic config.
				salvageable := 0
				for _, p := range rep.Remaining {
					if p.Salvageable() {
						salvageable++
					}
				}
				switch {
				case salvageable > 0 && !salvage:
					return fmt.Errorf("%d problem%s cannot be repaired without losing committed records (\"runnel repair -salvage\" gives them up)", salvageable, plural(salvageable))
				case len(rep.Remaining) > 0:
					return fmt.Errorf("%d problem%s cannot be repaired", len(rep.Remaining), plural(len(rep.Remaining)))
				case len(rep.Actions) == 0:
					fmt.Fprintln(c.stdout, "nothing to repair")
				default:
					fmt.Fprintf(c.stdout, "%d repair%s\n", len(rep.Actions), plural(len(rep.Actions)))
				}
				return nil
			})
		},
	})
}

// printLosses prints, per partition, the offsets a salvage gave up.
func printLosses(w io.Writer, actions []runnel.RepairAction) {
	type part struct {
		topic string
		p     int
	}
	var order []part
	lost := map[part][]string{}
	for _, a := range actions {
		if a.Kind != runnel.RepairSalvaged || a.To <= a.From {
			continue
		}
		k := part{a.Topic, a.Partition}
		if lost[k] == nil {
			order = append(order, k)
		}
		lost[k] = append(lost[k], offsetRange(a.From, a.To))
	}
	for _, k := range order {
		fmt.Fprintf(w, "lost: %s/%d: offsets %s\n", k.topic, k.p, strings.Join(lost[k], ", "))
	}
}

// offsetRange shows offsets [from, to).
func offsetRange(from, to int64) string {
	if to-from == 1 {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d-%d", from, to-1)
}

func topicArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return errors.New("interrupted")
	}
	return err
}

// set is the VerifyOptions.Progress callback.
func (p *progress) set(done, total int64) {
	p.total = total
	p.update(done)
}

func printVerify(w io.Writer, dir string, rep runnel.VerifyReport) {
	for _, p := range rep.Problems {
		fmt.Fprintln(w, problemText(dir, p))
	}
	for _, g := range rep.Gaps {
		fmt.Fprintf(w, "known loss: %s/%d: offsets %s (a salvaged gap at byte %d of %s)\n", g.Topic, g.Partition, offsetRange(g.From, g.To), g.Pos, rel(dir, g.Path))
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	topics := map[string]bool{}
	var segs int
	var recs int64
	for _, pc := range rep.Partitions {
		topics[pc.Topic] = true
		segs += pc.Segments
		recs += pc.Records
	}
	fmt.Fprintf(w, "checked %d topic%s, %d partition%s, %d segment%s, %d record%s, %s: ",
		len(topics), plural(len(topics)), len(rep.Partitions), plural(len(rep.Partitions)),
		segs, plural(segs), recs, plural(int(min(recs, 2))), humanBytes(rep.Bytes))
	if rep.OK() {
		fmt.Fprintln(w, "ok")
		return
	}
	repairable, salvageable := 0, 0
	for _, p := range rep.Problems {
		switch {
		case p.Repairable():
			repairable++
		case p.Salvageable():
			salvageable++
		}
	}
	fmt.Fprintf(w, "%d problem%s", len(rep.Problems), plural(len(rep.Problems)))
	if repairable > 0 {
		fmt.Fprintf(w, ", %d repairable with \"runnel repair\"", repairable)
	}
	if salvageable > 0 {
		fmt.Fprintf(w, ", %d only with \"runnel repair -salvage\" (losing the records they hold)", salvageable)
	}
	fmt.Fprintln(w)
}

func problemText(dir string, p runnel.Problem) string {
	s := rel(dir, p.Path)
	if p.Pos >= 0 {
		s += fmt.Sprintf(" at byte %d", p.Pos)
	}
	switch {
	case p.Offset >= 0 && p.To > p.Offset:
		s += fmt.Sprintf(" (offsets %s)", offsetRange(p.Offset, p.To))
	case p.Offset >= 0:
		s += fmt.Sprintf(" (offset %d)", p.Offset)
	}
	return fmt.Sprintf("%s: %s: %s", s, p.Kind, p.Detail)
}

func actionText(a runnel.RepairAction) string {
	switch a.Kind {
	case runnel.RepairCutTail:
		return fmt.Sprintf("cut %d bytes of torn tail at byte %d", a.Bytes, a.Pos)
	case runnel.RepairRecovered:
		return fmt.Sprintf("recovered after a reboot: %s", a.Detail)
	case runnel.RepairSalvaged:
		if a.To > a.From {
			return fmt.Sprintf("salvaged: offsets %s lost, replaced by a gap at byte %d", offsetRange(a.From, a.To), a.Pos)
		}
		return fmt.Sprintf("salvaged: %d unreadable bytes at byte %d replaced, no offsets lost", a.Bytes, a.Pos)
	case runnel.RepairFinishedDelete:
		return fmt.Sprintf("finished the delete of topic %s, which a DeleteTopic that died left marked", a.Topic)
	case runnel.RepairClearedDeleteMark:
		return fmt.Sprintf("cleared the deleted word at byte %d, which no DeleteTopic set: partition %d of topic %s takes appends and reads again", a.Pos, a.Partition, a.Topic)
	case runnel.RepairRemovedGrave:
		return fmt.Sprintf("removed %s of deleted topic %s's files, which a delete that died or failed left", humanBytes(a.Bytes), a.Topic)
	case runnel.RepairSetBackLogStart:
		return fmt.Sprintf("set the log start word at byte %d back from %d to %d, the start the log-start file records", a.Pos, a.From, a.To)
	case runnel.RepairRemovedDeleteIntent:
		return fmt.Sprintf("removed the intent of a DeleteTopic of topic %s that stopped before it marked the topic; the topic stays", a.Topic)
	}
	return a.Kind.String()
}

// rel shows a path inside the log directory relative to it.
func rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(r) {
		return r
	}
	return path
}
