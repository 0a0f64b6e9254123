package runnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// Tests of the published tail as a writer's starting point (skipToPublished):
// a writer taking the lock after another process appended starts at the
// tail in partition.meta, when it checks out, and judges what follows it
// as ever.

func init() {
	childMains["tail-dies"] = tailDiesMain
}

// tailTime is the timestamp the tests give record i of a writer.
func tailTime(sec int) time.Time { return time.Unix(int64(sec), 0) }

// sendAt sends one record with timestamp sec and checks the offset it got.
func sendAt(t *testing.T, p *Producer, sec int, want int64) {
	t.Helper()
	pos, err := p.Send(context.Background(), Record{Value: fmt.Appendf(nil, "t%d", sec), Time: tailTime(sec)})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if pos.Offset != want {
		t.Fatalf("Send got offset %d, want %d", pos.Offset, want)
	}
}

// verifyClean fails the test on any problem Verify reports in topic.
func verifyClean(t *testing.T, l *Log, topic string) {
	t.Helper()
	rep, err := l.Verify(context.Background(), topic, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify: %v", p)
	}
}

// TestTailHintTrustedOnlyWhole: log A appends, log B (another writer, as
// another process would be) appends after it, and A appends again. The
// published tail is made to carry a newer timestamp than B's records
// (still true of them, so Verify accepts it): the time entry of A's next
// frame shows whether A started from it or walked B's frames. A tail that
// a writer died while publishing (odd sequence), one whose check word does
// not match, one of another boot, one past the end of the file and one in
// another segment are walked past; a whole one is trusted.
func TestTailHintTrustedOnlyWhole(t *testing.T) {
	const bSec, hintSec = 50, 1000
	for _, tc := range []struct {
		name    string
		publish func(m *metaMap, real logPos, ts int64)
		trusted bool
	}{
		{"whole", func(m *metaMap, real logPos, ts int64) { m.publishTail(real, ts) }, true},
		{"killed mid-publish", func(m *metaMap, real logPos, ts int64) {
			m.publishTail(real, ts)
			m.u32(metaTailSeqOff).Add(1) // odd, as a writer killed between its stores leaves it
		}, false},
		{"check word", func(m *metaMap, real logPos, ts int64) {
			m.publishTail(real, ts)
			m.i64(metaTailSumOff).Add(1)
		}, false},
		{"another boot", func(m *metaMap, real logPos, ts int64) {
			m.publishTail(real, ts)
			other := currentBootID
			other[0] ^= 0xff
			m.i64(metaTailSumOff).Store(int64(tailCheck(real, ts, other)))
		}, false},
		{"past the end of the file", func(m *metaMap, real logPos, ts int64) {
			m.publishTail(logPos{real.base, real.pos + 4096, real.next + 7}, ts)
		}, false},
		{"another segment", func(m *metaMap, real logPos, ts int64) {
			m.publishTail(logPos{real.next, 0, real.next}, ts)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{Durability: Durable}
			a := openTest(t, dir, opts)
			mustCreate(t, a, "t", TopicConfig{Partitions: 1, IndexIntervalBytes: 1})
			pa := mustProducer(t, a, "t", nil)
			sendAt(t, pa, 1, 0)

			b := openTest(t, dir, opts)
			pb := mustProducer(t, b, "t", nil)
			sendAt(t, pb, bSec, 1)
			sendAt(t, pb, bSec-1, 2)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			m := a.topics["t"].parts()[0].shm
			real, ts, ok := m.heldTail()
			if !ok || real.next != 3 || ts != tailTime(bSec).UnixNano() {
				t.Fatalf("published tail %+v, newest %d, ok %v: want next 3, newest %d", real, ts, ok, tailTime(bSec).UnixNano())
			}
			tc.publish(m, real, tailTime(hintSec).UnixNano())
			sendAt(t, pa, 2, 3)

			want := tailTime(bSec).UnixNano()
			if tc.trusted {
				want = tailTime(hintSec).UnixNano()
			}
			pdir := filepath.Join(dir, "topics", "t", "0")
			if e := lastTimeEntry(t, pdir, 0); e.rel != 3 || e.ts != want {
				t.Errorf("last time entry: offset %d, time %d; want offset 3, time %d", e.rel, e.ts, want)
			}
			if recs := readAll(t, a, "t", 4, nil); len(recs) != 4 || string(recs[3].Value) != "t2" {
				t.Errorf("read %d records, the last %q", len(recs), recs[len(recs)-1].Value)
			}
			verifyClean(t, a, "t")
		})
	}
}

// tailDiesMain is a writer process of TestTailAfterWriterKilledBeforePublish.
// It opens $RUNNEL_TAIL_DIR (Durable, or Buffered with $RUNNEL_TAIL_BUFFERED),
// sends three records timed 10 to 12 s to topic "t", and then a fourth,
// timed 20 s, whose append kills the process after the frame is committed:
// with $RUNNEL_TAIL_DIE "publish" after it is indexed too, just before its
// tail is published; with "commit" inside the append, before either (the
// first frame reaching past offset $RUNNEL_TAIL_AT). With "seal" it sends
// records of 1,000 bytes, timed 10 s on, until it dies at its first roll,
// the seal committed (sealDyingAppender).
func tailDiesMain() int {
	mode := Durable
	if os.Getenv("RUNNEL_TAIL_BUFFERED") != "" {
		mode = Buffered
	}
	l, err := Open(os.Getenv("RUNNEL_TAIL_DIR"), mpOptions(Options{Durability: mode}))
	if err != nil {
		return mpFail("tail writer", err)
	}
	die := os.Getenv("RUNNEL_TAIL_DIE")
	if die == "commit" {
		at, _ := strconv.ParseInt(os.Getenv("RUNNEL_TAIL_AT"), 10, 64)
		l.app = &dyingAppender{appender: l.app, at: at, how: "committed"}
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("tail writer", err)
	}
	if die == "seal" {
		l.app = &sealDyingAppender{appender: l.app}
		for i := range 1000 {
			if _, err := p.Send(context.Background(), Record{Value: make([]byte, 1000), Time: tailTime(10 + i)}); err != nil {
				return mpFail("tail writer", err)
			}
		}
		return mpFail("tail writer", errors.New("still alive after 1,000 records of 1,000 bytes: no roll"))
	}
	for i := range 3 {
		if _, err := p.Send(context.Background(), Record{Value: fmt.Appendf(nil, "t%d", 10+i), Time: tailTime(10 + i)}); err != nil {
			return mpFail("tail writer", err)
		}
	}
	if die == "publish" {
		testHookBeforePublish = func() {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	p.Send(context.Background(), Record{Value: []byte("t20"), Time: tailTime(20)})
	return mpFail("tail writer", fmt.Errorf("still alive after the append it was to die in (%q)", die))
}

// TestTailAfterWriterKilledBeforePublish: a writer process is SIGKILLed
// after committing a frame and before publishing the tail past it (with
// the frame's index entry written, or not yet). The next writer, in
// another process and behind the published tail, starts there and finds
// the frame after it: its own record gets the offset after the dead
// writer's, the index has each entry once, and the time index knows the
// dead writer's newest timestamp. In Buffered mode the dead writer kept
// the writer lock and copied its frames through the mapping, so zeros it
// extended the file by follow the frame too.
func TestTailAfterWriterKilledBeforePublish(t *testing.T) {
	for _, mode := range []Durability{Durable, Buffered} {
		for _, die := range []string{"publish", "commit"} {
			t.Run(fmt.Sprintf("%v/%s", mode, die), func(t *testing.T) {
				dir := t.TempDir()
				l := openTest(t, dir, &Options{Durability: mode})
				mustCreate(t, l, "t", TopicConfig{Partitions: 1, IndexIntervalBytes: 1})
				p := mustProducer(t, l, "t", nil)
				sendAt(t, p, 1, 0)

				env := []string{"RUNNEL_TAIL_DIR=" + dir, "RUNNEL_TAIL_DIE=" + die, "RUNNEL_TAIL_AT=4"}
				if mode == Buffered {
					env = append(env, "RUNNEL_TAIL_BUFFERED=1")
				}
				cmd := mpChild("tail-dies", env...)
				err := cmd.Run()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("writer process: %v; want it killed", err)
				}

				m := l.topics["t"].parts()[0].shm
				if tail, ts, ok := m.heldTail(); !ok || tail.next != 4 || ts != tailTime(12).UnixNano() {
					t.Fatalf("published tail %+v, newest %d, ok %v: want the dead writer's third record's", tail, ts, ok)
				}
				sendAt(t, p, 2, 5)

				pdir := filepath.Join(dir, "topics", "t", "0")
				if e := lastTimeEntry(t, pdir, 0); e.rel != 5 || e.ts != tailTime(20).UnixNano() {
					t.Errorf("last time entry: offset %d, time %d; want offset 5, time %d", e.rel, e.ts, tailTime(20).UnixNano())
				}
				entries, err := readIndex(segmentPath(pdir, 0, indexExt), 1<<30)
				if err != nil || len(entries) != 5 {
					t.Errorf("offset index: %v, %v; want an entry for each frame after the first", entries, err)
				}
				recs := readAll(t, l, "t", 6, nil)
				for i, want := range []string{"t1", "t10", "t11", "t12", "t20", "t2"} {
					if i >= len(recs) || string(recs[i].Value) != want {
						t.Fatalf("records %v: want %q at offset %d", recs, want, i)
					}
				}
				verifyClean(t, l, "t")
			})
		}
	}
}

// sealDyingAppender commits the first seal it is given, as a roll does,
// and kills its process: before the next segment is created, and before
// any tail past the seal's segment is published.
type sealDyingAppender struct{ appender }

func (d *sealDyingAppender) appendFrame(fd int, off int64, b []byte, sync bool, cm *commitMap) error {
	if m, err := frame.ParseMeta(b); err != nil || m.Kind != frame.KindSeal {
		return d.appender.appendFrame(fd, off, b, sync, cm)
	}
	if err := d.appender.appendFrame(fd, off, b, sync, cm); err != nil {
		os.Exit(mpFail("seal-dying appender", err))
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// TestTailAfterWriterKilledSealing: a writer process rolls and is
// SIGKILLed once its seal is committed, so the published tail is in the
// sealed segment, before the seal, and the next segment does not exist.
// The next writer, in another process and behind the published tail in
// that segment, starts there, finds the seal after it and follows it: the
// next segment is created, its record gets the seal's offset there, and
// the sealed segment's last time entry knows the dead writer's newest
// timestamp.
func TestTailAfterWriterKilledSealing(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Durable})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})
	p := mustProducer(t, l, "t", nil)
	sendAt(t, p, 1, 0)

	cmd := mpChild("tail-dies", "RUNNEL_TAIL_DIR="+dir, "RUNNEL_TAIL_DIE=seal")
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer process: %v; want it killed", err)
	}
	pdir := filepath.Join(dir, "topics", "t", "0")
	if bases, err := listSegments(pdir); err != nil || len(bases) != 1 {
		t.Fatalf("segments %v, %v: want the first alone", bases, err)
	}
	m := l.topics["t"].parts()[0].shm
	tail, ts, ok := m.heldTail()
	if !ok || tail.base != 0 || tail.pos <= 0 {
		t.Fatalf("published tail %+v, ok %v: want one in segment 0", tail, ok)
	}
	sendAt(t, p, 2, tail.next)

	if bases, err := listSegments(pdir); err != nil || len(bases) != 2 || bases[1] != tail.next {
		t.Fatalf("segments %v, %v: want 0 and %d", bases, err, tail.next)
	}
	if e := lastTimeEntry(t, pdir, 0); int64(e.rel) != tail.next || e.ts != ts {
		t.Errorf("sealed segment's last time entry: offset %d, time %d; want offset %d, time %d", e.rel, e.ts, tail.next, ts)
	}
	if recs := readAll(t, l, "t", int(tail.next)+1, nil); string(recs[len(recs)-1].Value) != "t2" {
		t.Errorf("last record %q, want t2", recs[len(recs)-1].Value)
	}
	verifyClean(t, l, "t")
}
