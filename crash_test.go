package runnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// The crash loop: producer processes are killed with SIGKILL at random
// moments and restarted, while a reader process follows the log throughout.
//
// What the protocol guarantees, and what the test therefore asserts:
//
//   - An acknowledged record is committed in the page cache (Buffered) or on
//     disk (Durable); a process crash loses neither, so every acknowledged
//     record is in the final log, at the offset it was acknowledged with.
//   - A record can be committed and not acknowledged: the kill landed
//     between the commit and the callback. Such records stay. A producer
//     that resent them would duplicate them, so a restarted producer reads
//     the log and continues after the highest sequence number of its own
//     that it finds there. With that, each producer's records in the log
//     are exactly its sequence numbers 0, 1, 2, … in offset order: no gap
//     (a later frame of a producer is committed only after its earlier
//     ones) and no duplicate.
//   - Each incarnation's records in the log are a prefix of what it sent,
//     and what it acknowledged (its ack file) is a prefix of those.
//   - A dead writer's frame is never delivered unless it was committed: the
//     reader sees only whole, checksummed records, contiguous offsets, and
//     what it sees is a prefix of the final log.
//   - After the last kill, one more append cuts at most the last dead
//     writer's uncommitted frame, and nothing committed.

const crashTopic = "crash"

func init() {
	childMains["crash-producer"] = crashProducerMain
	childMains["crash-reader"] = crashReaderMain
}

// crashProducerMain is one incarnation of a producer of the crash loop.
//
//	RUNNEL_CRASH_DIR      log directory
//	RUNNEL_CRASH_ID       producer id
//	RUNNEL_CRASH_INC      incarnation number
//	RUNNEL_CRASH_FROM     an offset at or before this producer's records
//	                      with sequence numbers RUNNEL_CRASH_BASE and up
//	RUNNEL_CRASH_BASE     the first sequence number an earlier incarnation
//	                      may have left at or after RUNNEL_CRASH_FROM
//	RUNNEL_CRASH_ACKS     file to append "seq offset" lines to, after the ack
//	RUNNEL_CRASH_DURABLE  "1" for Durable mode, else Buffered
//	RUNNEL_CRASH_MAX      records to send before idling
//	RUNNEL_CRASH_PAD      value padding, bytes (plus up to 12)
//	RUNNEL_CRASH_DIE_AT   if set, an offset: the process kills itself in
//	                      the append of the first frame that reaches past
//	                      it (see dyingAppender)
//	RUNNEL_CRASH_DIE_HOW  what that append leaves: torn, uncommitted or
//	                      committed
//	RUNNEL_CRASH_SEND     "1": one record at a time with Send (a lone
//	                      sender writes its own frames and keeps the
//	                      writer lock between them), else SendAsync
//
// It finds where its predecessors stopped by reading the log, prints
// "ready <first seq>", and sends until it is killed.
func crashProducerMain() int {
	env := func(k string) int64 { v, _ := strconv.ParseInt(os.Getenv("RUNNEL_CRASH_"+k), 10, 64); return v }
	id, inc := int(env("ID")), int(env("INC"))
	who := fmt.Sprintf("crash producer %d.%d", id, inc)
	d := Buffered
	if env("DURABLE") == 1 {
		d = Durable
	}
	l, err := Open(os.Getenv("RUNNEL_CRASH_DIR"), mpOptions(Options{Durability: d}))
	if err != nil {
		return mpFail(who, err)
	}
	if at := os.Getenv("RUNNEL_CRASH_DIE_AT"); at != "" {
		// Before the first append, so that the writer goroutines see it.
		l.app = &dyingAppender{appender: l.app, at: env("DIE_AT"), how: os.Getenv("RUNNEL_CRASH_DIE_HOW"), seed: uint64(env("INC"))}
	}
	// Continue after the highest sequence number of ours in the log. The
	// earlier incarnations are dead, so nothing of theirs can still appear.
	next := env("BASE")
	c, err := l.Consumer(crashTopic, &ConsumerOptions{Start: AtOffset(env("FROM"))})
	if err != nil {
		return mpFail(who, err)
	}
	for {
		recs, err := c.TryPoll()
		if err != nil {
			return mpFail(who, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			v, err := mpParse(r.Value)
			if err != nil {
				return mpFail(who, fmt.Errorf("offset %d: %w", r.Offset, err))
			}
			if v.P != id {
				continue
			}
			if v.Seq != next {
				return mpFail(who, fmt.Errorf("offset %d holds my record %d, want %d", r.Offset, v.Seq, next))
			}
			next++
		}
	}
	c.Close()

	acks, err := os.OpenFile(os.Getenv("RUNNEL_CRASH_ACKS"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return mpFail(who, err)
	}
	p, err := l.Producer(crashTopic, nil)
	if err != nil {
		return mpFail(who, err)
	}
	fmt.Printf("ready %d\n", next)

	// Acks are written by one goroutine, in batches, strictly after the
	// callback reported them; a window bounds the records in flight.
	type ack struct{ seq, off int64 }
	const window = 1024
	ackc := make(chan ack, window)
	slots := make(chan struct{}, window)
	go func() {
		var buf []byte
		var repairs int64
		for a := range ackc {
			buf = fmt.Appendf(buf[:0], "%d %d\n", a.seq, a.off)
			n := 1
			for more := true; more; {
				select {
				case a := <-ackc:
					buf = fmt.Appendf(buf, "%d %d\n", a.seq, a.off)
					n++
				default:
					more = false
				}
			}
			if _, err := acks.Write(buf); err != nil {
				os.Exit(mpFail(who, err))
			}
			// Tell the parent how many dead writers' tails this one cut.
			if r := l.Stats().Repairs; r != repairs {
				repairs = r
				fmt.Printf("repairs %d\n", r)
			}
			for range n {
				<-slots
			}
		}
	}()
	last := next + env("MAX")
	pad := int(env("PAD"))
	for seq := next; seq < last && env("SEND") == 1; seq++ {
		pos, err := p.Send(context.Background(), Record{Value: mpValue(id, inc, seq, pad+int(seq%13))})
		if err != nil {
			return mpFail(who, fmt.Errorf("record %d: %w", seq, err))
		}
		slots <- struct{}{}
		ackc <- ack{seq, pos.Offset}
	}
	for seq := next; seq < last && env("SEND") != 1; seq++ {
		slots <- struct{}{}
		p.SendAsync(Record{Value: mpValue(id, inc, seq, pad+int(seq%13))}, func(pos Position, err error) {
			if err != nil {
				os.Exit(mpFail(who, fmt.Errorf("record %d: %w", seq, err)))
			}
			ackc <- ack{seq, pos.Offset}
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		return mpFail(who, err)
	}
	time.Sleep(time.Hour) // until killed
	return 0
}

// dyingAppender is a crash producer's append backend when the test aims
// its death inside an append: it passes frames to the real backend until
// the first frame that holds offset at (or a seal at or past it), then
// writes what a writer killed at that moment leaves, and SIGKILLs its own
// process:
//
//	torn         a prefix of the frame, header included (4 bytes to all
//	             but one): a write cut short
//	uncommitted  the whole frame, without the commit byte
//	committed    frame, commit byte and (Durable) sync: killed before the
//	             acknowledgement
//
// So every such death lands where the test means it to, however busy the
// machine, instead of when a timed kill happens to.
type dyingAppender struct {
	appender
	at   int64
	how  string
	seed uint64
}

func (d *dyingAppender) appendFrame(fd int, off int64, b []byte, sync bool, cm *commitMap) error {
	m, err := frame.ParseMeta(b)
	if err != nil || m.End() <= d.at && (m.Kind != frame.KindSeal || m.Base < d.at) {
		return d.appender.appendFrame(fd, off, b, sync, cm)
	}
	switch d.how {
	case "torn":
		n := 4 + rand.New(rand.NewPCG(d.seed, uint64(off))).IntN(len(b)-4)
		err = pwriteFull(fd, b[:n], off)
	case "uncommitted":
		err = pwriteFull(fd, b, off)
	case "committed":
		err = d.appender.appendFrame(fd, off, b, sync, cm)
	default:
		err = fmt.Errorf("RUNNEL_CRASH_DIE_HOW=%q", d.how)
	}
	if err != nil {
		os.Exit(mpFail("dying appender", err))
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// dieHows are dyingAppender's deaths, and whether each leaves a dead
// writer's frame for the next writer to cut.
var dieHows = []struct {
	how      string
	leftover bool
}{{"torn", true}, {"uncommitted", true}, {"committed", false}}

// crashHash is the running hash the reader checkpoints: it covers every
// delivered record's offset and value, so equal hashes at equal counts mean
// the reader saw a prefix of the final log.
type crashHash struct {
	h   hash.Hash64
	buf [12]byte
}

func newCrashHash() *crashHash { return &crashHash{h: fnv.New64a()} }

func (c *crashHash) add(off int64, value []byte) {
	binary.LittleEndian.PutUint64(c.buf[:], uint64(off))
	binary.LittleEndian.PutUint32(c.buf[8:], uint32(len(value)))
	c.h.Write(c.buf[:])
	c.h.Write(value)
}

// crashCheckpointEvery is how often the reader records (count, hash).
const crashCheckpointEvery = 1000

// crashReaderMain follows the crash loop's log from offset 0 with Poll,
// checking every record as it comes: offsets contiguous, values whole, each
// producer's sequence numbers contiguous. Every crashCheckpointEvery records
// it appends "count hash" to $RUNNEL_CRASH_CKPT. When a count arrives on
// stdin it reads up to it, writes a last checkpoint and exits.
func crashReaderMain() int {
	l, err := Open(os.Getenv("RUNNEL_CRASH_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("crash reader", err)
	}
	defer l.Close()
	c, err := l.Consumer(crashTopic, nil)
	if err != nil {
		return mpFail("crash reader", err)
	}
	defer c.Close()
	ckpt, err := os.OpenFile(os.Getenv("RUNNEL_CRASH_CKPT"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return mpFail("crash reader", err)
	}
	var target atomic.Int64
	target.Store(-1)
	go func() {
		s, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			os.Exit(mpFail("crash reader", fmt.Errorf("stdin said %q", s)))
		}
		target.Store(n)
	}()
	h := newCrashHash()
	next := map[int]int64{}
	var count int64
	checkpoint := func() error {
		_, err := fmt.Fprintf(ckpt, "%d %d\n", count, h.h.Sum64())
		return err
	}
	for {
		if tgt := target.Load(); tgt >= 0 && count >= tgt {
			if count > tgt {
				return mpFail("crash reader", fmt.Errorf("read %d records, the log holds %d", count, tgt))
			}
			if err := checkpoint(); err != nil {
				return mpFail("crash reader", err)
			}
			st := l.Stats()
			fmt.Printf("repairs %d %d\n", st.Repairs, st.BytesRepaired)
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return mpFail("crash reader", fmt.Errorf("Poll after %d records: %w", count, err))
		}
		for _, r := range recs {
			if r.Offset != count {
				return mpFail("crash reader", fmt.Errorf("record %d has offset %d", count, r.Offset))
			}
			v, err := mpParse(r.Value)
			if err != nil {
				return mpFail("crash reader", fmt.Errorf("offset %d: %w", r.Offset, err))
			}
			if v.Seq != next[v.P] {
				return mpFail("crash reader", fmt.Errorf("offset %d: producer %d record %d, want %d", r.Offset, v.P, v.Seq, next[v.P]))
			}
			next[v.P]++
			h.add(r.Offset, r.Value)
			count++
			if count%crashCheckpointEvery == 0 {
				if err := checkpoint(); err != nil {
					return mpFail("crash reader", err)
				}
			}
		}
	}
}

// crashIncarnation is one producer process that got as far as "ready".
type crashIncarnation struct {
	id, inc int
	start   int64 // its first sequence number
	acks    string
}

func crashKills(t *testing.T) int {
	if s := os.Getenv("RUNNEL_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RUNNEL_CRASH_KILLS=%q", s)
		}
		return n
	}
	return mpScale(300, 100, 30)
}

// TestCrashLoop kills producer processes with SIGKILL at random moments,
// restarts them, and checks the log against what they acknowledged and
// what a reader process saw. RUNNEL_CRASH_KILLS sets the number of kills
// (default 300; 100 under -race; 30 with -short; e.g. 10000 for a long run).
func TestCrashLoop(t *testing.T) {
	slowAlone(t)
	kills := crashKills(t)
	cfg := crashConfig{producers: 4, kills: kills, segBytes: minSegmentBytes, maxPerRun: 3000,
		killWithin: 20 * time.Millisecond, dieInAppend: 0.5}
	if kills > 1000 {
		cfg.segBytes, cfg.maxPerRun = 4<<20, 1000 // bound the long run's log size
	}
	runCrashLoop(t, cfg)
}

// TestCrashLoopSend is the crash loop with producers that each send one
// record at a time (Send), half of them durable: each writes its own
// frames, keeps the writer lock between appends while nobody else waits,
// and makes its frames durable through the partition's shared fdatasync,
// so kills land while a process keeps the writer lock, holds the sync
// lock or sleeps waiting for another's fdatasync.
func TestCrashLoopSend(t *testing.T) {
	slowAlone(t)
	runCrashLoop(t, crashConfig{producers: 4, kills: mpScale(100, 40, 20), segBytes: minSegmentBytes, maxPerRun: 3000,
		killWithin: 20 * time.Millisecond, dieInAppend: 0.5, send: true})
}

// TestCrashMidAppend puts every kill inside an append: one producer
// process writing large frames kills itself (dyingAppender) partway
// through writing a frame, after writing it but before its commit byte, or
// after the commit but before the acknowledgement. After each death this
// process repairs the tail itself, and the test checks that exactly the
// deaths that left a frame behind had one cut, by this process or by the
// reader process.
func TestCrashMidAppend(t *testing.T) {
	slowAlone(t)
	runCrashLoop(t, crashConfig{producers: 1, kills: mpScale(60, 40, 20), segBytes: 8 << 20,
		pad: 16 << 10, maxPerRun: 160, dieInAppend: 1, repairAfterKill: true})
}

type crashConfig struct {
	producers       int
	kills           int
	segBytes        int64
	pad             int           // value padding
	maxPerRun       int           // records an incarnation sends before it idles
	killWithin      time.Duration // the other incarnations are killed from outside within this of being ready
	dieInAppend     float64       // share of incarnations that kill themselves inside an append (dyingAppender)
	repairAfterKill bool          // repair in this process after every kill and count the cuts (one producer only)
	send            bool          // producers use Send, one record at a time
}

func runCrashLoop(t *testing.T, cfg crashConfig) {
	producers, kills, segBytes, maxPerRun := cfg.producers, cfg.kills, cfg.segBytes, cfg.maxPerRun
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d kills, seed %d", kills, seed)

	dir := t.TempDir()
	work := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, crashTopic, TopicConfig{Partitions: 1, SegmentBytes: segBytes})
	tp, err := l.topic(crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	part := tp.parts()[0]

	ckptPath := filepath.Join(work, "reader.ckpt")
	reader := mpChild("crash-reader", "RUNNEL_CRASH_DIR="+dir, "RUNNEL_CRASH_CKPT="+ckptPath)
	readerIn, err := reader.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var readerOut bytes.Buffer // read once the reader exited
	reader.Stdout = &readerOut
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	t.Cleanup(func() { reader.Process.Kill(); <-readerDone })

	var (
		killed    atomic.Int64
		mu        sync.Mutex
		incs      []crashIncarnation
		unreadied int
		wg        sync.WaitGroup

		producerRepairs int64        // dead writers' tails cut by producers, as far as they told before dying
		tornTails       atomic.Int64 // leftovers this process cut after a kill
		leftovers       atomic.Int64 // deaths in an append that left a frame to cut
	)
	start := time.Now()
	for id := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			from, base := int64(0), int64(0)
			for inc := 0; killed.Load() < int64(kills) && !t.Failed(); inc++ {
				// Every earlier incarnation is dead: records of this one
				// can only come after the end of the log as it is now.
				end, err := part.endOffset()
				if err != nil {
					t.Errorf("producer %d: end offset: %v", id, err)
					return
				}
				acks := filepath.Join(work, fmt.Sprintf("p%d-i%d.acks", id, inc))
				env := []string{
					"RUNNEL_CRASH_DIR=" + dir,
					"RUNNEL_CRASH_ID=" + strconv.Itoa(id),
					"RUNNEL_CRASH_INC=" + strconv.Itoa(inc),
					"RUNNEL_CRASH_FROM=" + strconv.FormatInt(from, 10),
					"RUNNEL_CRASH_BASE=" + strconv.FormatInt(base, 10),
					"RUNNEL_CRASH_ACKS=" + acks,
					"RUNNEL_CRASH_DURABLE=" + strconv.Itoa(id%2),
					"RUNNEL_CRASH_MAX=" + strconv.Itoa(maxPerRun),
					"RUNNEL_CRASH_PAD=" + strconv.Itoa(cfg.pad),
					"RUNNEL_CRASH_SEND=" + map[bool]string{true: "1", false: "0"}[cfg.send],
				}
				die := rng.Float64() < cfg.dieInAppend
				if die {
					// Somewhere in this incarnation's records: every record
					// before its first is in the log already, and it sends
					// maxPerRun of them, so it gets there.
					how := dieHows[rng.IntN(len(dieHows))]
					env = append(env, "RUNNEL_CRASH_DIE_AT="+strconv.FormatInt(end+rng.Int64N(int64(maxPerRun)), 10),
						"RUNNEL_CRASH_DIE_HOW="+how.how)
					if how.leftover {
						leftovers.Add(1)
					}
				}
				cmd := mpChild("crash-producer", env...)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Error(err)
					return
				}
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				lines := mpLines(stdout)
				var got []string
				switch {
				case die:
					// It kills itself; the bound only stops a broken test.
					timeout := time.After(5 * time.Minute)
				wait:
					for {
						select {
						case s, ok := <-lines:
							if !ok {
								break wait
							}
							got = append(got, s)
						case <-timeout:
							t.Errorf("producer %d.%d did not reach its death in 5 minutes", id, inc)
							cmd.Process.Kill()
						}
					}
				case rng.IntN(8) == 0:
					// Anywhere in start-up: opening, reading, repairing.
					time.Sleep(time.Duration(rng.IntN(15_000)) * time.Microsecond)
				default:
					select {
					case s, ok := <-lines:
						if ok {
							got = append(got, s)
						}
					case <-time.After(5 * time.Minute):
						t.Errorf("producer %d.%d: not ready after 5 minutes", id, inc)
					}
					time.Sleep(time.Duration(rng.Int64N(int64(cfg.killWithin))))
				}
				cmd.Process.Kill()
				killed.Add(1)
				for s := range lines {
					got = append(got, s)
				}
				err = cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("producer %d.%d ended by itself (%v) instead of by SIGKILL", id, inc, err)
					return
				}
				if cfg.repairAfterKill {
					before := l.Stats().Repairs
					if err := part.repair(context.Background()); err != nil {
						t.Errorf("repair after killing producer %d.%d: %v", id, inc, err)
						return
					}
					if l.Stats().Repairs > before {
						tornTails.Add(1)
					}
				}
				if len(got) == 0 {
					mu.Lock()
					unreadied++
					mu.Unlock()
					continue // it sent nothing: its successor starts where it would have
				}
				first, ok := strings.CutPrefix(got[0], "ready ")
				s, err := strconv.ParseInt(first, 10, 64)
				if !ok || err != nil {
					t.Errorf("producer %d.%d said %q", id, inc, got)
					return
				}
				var cut int64
				for _, line := range got[1:] {
					if _, err := fmt.Sscanf(line, "repairs %d", &cut); err != nil {
						t.Errorf("producer %d.%d said %q", id, inc, line)
						return
					}
				}
				mu.Lock()
				incs = append(incs, crashIncarnation{id: id, inc: inc, start: s, acks: acks})
				producerRepairs += cut
				mu.Unlock()
				from, base = end, s
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d kills (%d before ready) in %v; producers cut at least %d dead writers' tails", killed.Load(), unreadied, time.Since(start).Round(time.Millisecond), producerRepairs)
	if cfg.repairAfterKill {
		t.Logf("%d of %d kills left a torn or uncommitted frame; this process cut %d", leftovers.Load(), killed.Load(), tornTails.Load())
	}

	// Everything a producer acknowledged, from the ack files.
	type ackInfo struct {
		inc int
		off int64
	}
	acked := map[[2]int64]ackInfo{} // (producer, seq)
	var nacks int
	for _, in := range incs {
		data, err := os.ReadFile(in.acks)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		// A kill can interrupt the ack writer mid-line only after the
		// line's record was acknowledged; an unfinished line counts as
		// not logged.
		if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
			data = data[:i+1]
		}
		want := in.start
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if line == "" {
				continue
			}
			var seq, off int64
			if _, err := fmt.Sscanf(line, "%d %d", &seq, &off); err != nil {
				t.Fatalf("%s: line %q", in.acks, line)
			}
			if seq != want {
				t.Fatalf("%s: acknowledged record %d, want %d (acks out of order)", in.acks, seq, want)
			}
			want++
			acked[[2]int64{int64(in.id), seq}] = ackInfo{in.inc, off}
			nacks++
		}
	}

	// The final log, as a fresh process sees it.
	lf := openTest(t, dir, &Options{Durability: Buffered})
	recs := readAvailable(t, lf, crashTopic)
	n := int64(len(recs))
	nextSeq := make([]int64, producers)
	lastInc := make([]int, producers)
	for i := range lastInc {
		lastInc[i] = -1
	}
	started := map[[2]int]int64{} // (producer, incarnation) → first seq
	for _, in := range incs {
		started[[2]int{in.id, in.inc}] = in.start
	}
	h := newCrashHash()
	var unacked int
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
		v, err := mpParse(r.Value)
		if err != nil {
			t.Fatalf("offset %d: %v", r.Offset, err)
		}
		if v.P >= producers {
			t.Fatalf("offset %d: unknown producer %d", r.Offset, v.P)
		}
		if v.Seq != nextSeq[v.P] {
			t.Fatalf("offset %d: producer %d record %d, want %d (duplicate or gap)", r.Offset, v.P, v.Seq, nextSeq[v.P])
		}
		first, ok := started[[2]int{v.P, v.Inc}]
		switch {
		case !ok:
			t.Fatalf("offset %d: record of producer %d.%d, which was killed before it was ready", r.Offset, v.P, v.Inc)
		case v.Inc < lastInc[v.P]:
			t.Fatalf("offset %d: producer %d.%d after a record of incarnation %d", r.Offset, v.P, v.Inc, lastInc[v.P])
		case v.Inc > lastInc[v.P] && v.Seq != first:
			t.Fatalf("offset %d: producer %d.%d starts at record %d, it started sending at %d", r.Offset, v.P, v.Inc, v.Seq, first)
		}
		lastInc[v.P] = v.Inc
		nextSeq[v.P]++
		if a, ok := acked[[2]int64{int64(v.P), v.Seq}]; ok {
			if a.off != r.Offset || a.inc != v.Inc {
				t.Fatalf("producer %d record %d: acknowledged to %d.%d at offset %d, found at %d from %d.%d", v.P, v.Seq, v.P, a.inc, a.off, r.Offset, v.P, v.Inc)
			}
			delete(acked, [2]int64{int64(v.P), v.Seq})
		} else {
			unacked++
		}
		h.add(r.Offset, r.Value)
	}
	for k, a := range acked {
		t.Errorf("acknowledged record %d of producer %d.%d (offset %d) is not in the log", k[1], k[0], a.inc, a.off)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("log: %d records, %d acknowledged, %d committed without an acknowledgement logged, %d incarnations", n, nacks, unacked, len(incs))

	// The reader saw a prefix of this log, all the way to its end.
	fmt.Fprintf(readerIn, "%d\n", n)
	select {
	case err := <-readerDone:
		readerDone <- err // for the cleanup
		if err != nil {
			t.Fatalf("reader process: %v", err)
		}
		// The reader's Poll repairs what dead writers leave where it
		// waits; the producers repair the rest, uncounted.
		said := strings.TrimSpace(readerOut.String())
		t.Logf("reader process: %s", said)
		if cfg.repairAfterKill {
			// One producer, dead before this process or the reader cut its
			// leftover, and nobody else writing: between them, they cut
			// each leftover exactly once.
			var readerCut, readerBytes int64
			if _, err := fmt.Sscanf(said, "repairs %d %d", &readerCut, &readerBytes); err != nil {
				t.Fatalf("reader process said %q", said)
			}
			if got, want := tornTails.Load()+readerCut, leftovers.Load(); got != want {
				t.Errorf("%d dead writers' frames cut (%d here, %d by the reader), want %d: one per death that left one", got, tornTails.Load(), readerCut, want)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatal("reader process did not reach the end of the log within 60s")
	}
	checkCheckpoints(t, ckptPath, recs)

	// verify: nothing wrong but, at most, the last dead writer's torn tail.
	checkVerify(t, lf, true)

	// One more append: it cuts at most the last dead writer's uncommitted
	// frame, and nothing committed.
	p, _ := lf.Producer(crashTopic, nil)
	pos, err := p.Send(context.Background(), Record{Value: mpValue(producers, 0, 0, 0)})
	if err != nil {
		t.Fatalf("append after the crashes: %v", err)
	}
	if pos.Offset != n {
		t.Fatalf("append after the crashes got offset %d, want %d", pos.Offset, n)
	}
	st := lf.Stats()
	t.Logf("final append: %d repairs, %d bytes cut", st.Repairs, st.BytesRepaired)
	if st.Repairs > 1 {
		t.Errorf("final append repaired %d times, at most one dead writer's frame can be left", st.Repairs)
	}
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	if got := verifyPartition(t, filepath.Join(dir, "topics", crashTopic, "0")); got != n+1 {
		t.Errorf("verify: %d records on disk, want %d", got, n+1)
	}
	l2 := openTest(t, dir, nil)
	checkVerify(t, l2, false)
	again := readAvailable(t, l2, crashTopic)
	if int64(len(again)) != n+1 {
		t.Fatalf("after the repair the log has %d records, want %d", len(again), n+1)
	}
	h2 := newCrashHash()
	for _, r := range again[:n] {
		h2.add(r.Offset, r.Value)
	}
	if h2.h.Sum64() != h.h.Sum64() {
		t.Fatal("the repair changed committed records")
	}
}

// checkVerify runs Log.Verify on the crash topic: no problem at all, or
// with killed only what a writer killed mid-append or mid-roll may leave:
// a torn tail, index files not created yet or missing their last entry.
func checkVerify(t *testing.T, l *Log, killed bool) {
	t.Helper()
	rep, err := l.Verify(context.Background(), crashTopic, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		if killed && (p.Kind == ProblemTornTail || p.Kind == ProblemIndex) {
			t.Logf("Verify: %v (a killed writer's leftovers)", p)
			continue
		}
		t.Errorf("Verify: %v", p)
	}
	for _, n := range rep.Notes {
		t.Logf("Verify note: %s", n)
	}
}

// checkCheckpoints checks the reader's (count, hash) checkpoints against
// the final log: at every count, the hash of the log's first count records.
func checkCheckpoints(t *testing.T, path string, recs []Record) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]uint64{}
	h := newCrashHash()
	want[0] = h.h.Sum64()
	for i, r := range recs {
		h.add(r.Offset, r.Value)
		want[int64(i+1)] = h.h.Sum64()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, line := range lines {
		var count int64
		var sum uint64
		if _, err := fmt.Sscanf(line, "%d %d", &count, &sum); err != nil {
			t.Fatalf("reader checkpoint %q", line)
		}
		if w, ok := want[count]; !ok || w != sum {
			t.Fatalf("reader's first %d records differ from the final log's", count)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, strconv.Itoa(len(recs))+" ") {
		t.Fatalf("reader's last checkpoint %q, want count %d", last, len(recs))
	}
	t.Logf("reader: %d checkpoints, all a prefix of the final log", len(lines))
}

// verifyPartition is a strict, independent check of a closed partition:
// every frame committed and checksummed, frames back to back to the end of
// each file, offsets contiguous across segments, every segment but the last
// ending in a seal that names the next. It returns the number of records.
func verifyPartition(t testing.TB, dir string) int64 {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var next int64
	if len(bases) > 0 {
		next = bases[0]
	}
	var records int64
	for i, base := range bases {
		path := segmentPath(dir, base, logExt)
		if base != next {
			t.Errorf("%s: base %d, the previous segment ends at %d", path, base, next)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sealed := false
		last := i == len(bases)-1
		for pos := int64(0); pos < int64(len(data)); {
			if last && !sealed && allZero(data[pos:]) {
				break // zeros ahead of the tail (FORMAT.md): the end
			}
			m, err := frame.ParseMeta(data[pos:])
			if err == nil {
				err = frame.Verify(data[pos:], m)
			}
			if err == nil && !m.Committed() {
				err = errors.New("not committed")
			}
			if err == nil && m.Base != next {
				err = fmt.Errorf("frame starts at offset %d, want %d", m.Base, next)
			}
			if err == nil && sealed {
				err = errors.New("frame after the seal")
			}
			if err == nil && pos+m.Size() > int64(len(data)) {
				err = errors.New("frame runs past the end of the file")
			}
			if err != nil {
				t.Fatalf("verify %s at byte %d: %v", path, pos, err)
			}
			if m.Kind == frame.KindSeal {
				sealed = true
			} else {
				records += int64(m.Count)
				next = m.End()
			}
			pos += m.Size()
		}
		if !last && !sealed {
			t.Errorf("verify %s: sealed segment without a seal", path)
		}
	}
	return records
}
