package runnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-log/runnel/internal/frame"
)

// The power-loss test. A child process appends records in one durability
// mode while a sync observer (syncObserver) records, for every file and
// directory of its log, what each completed sync made durable: the bytes
// there when the sync began, the names in a directory. The parent kills
// the child with SIGKILL at a random moment and builds, from the files as
// the page cache held them and the files as last synced, disk images that
// a power loss may leave:
//
//   - A file whose name was not in its directory when the directory was
//     last synced may be gone.
//   - Its size may be the synced size or the current one.
//   - Each 512-byte sector that held data when the file was last synced
//     holds the synced bytes or the current ones (a sector is written
//     whole); each sector past the synced size holds the current bytes or
//     zeros (space allocated, data never written).
//
// That covers .log, .index, .timeindex and partition.meta alike. (A model
// that zeroes sectors which held synced data describes a disk that loses
// durable data, which no log can survive.) Then the machine "restarts" (the
// boot id changes) and the parent asserts, for every image: every record
// the synced files held survives, in every durability mode, and in
// Durable mode that includes every record acknowledged; nothing is
// delivered that was not written; appends after recovery succeed (no
// partition is left refusing them) and are readable at the offsets they
// were acknowledged at; and Verify then finds nothing wrong.

const (
	plDirEnv    = "RUNNEL_PL_DIR"
	plShadowEnv = "RUNNEL_PL_SHADOW"
	plModeEnv   = "RUNNEL_PL_MODE"
)

func init() { childMains["powerloss-writer"] = powerLossWriterMain }

// setBootIDForTest makes the process see id as the machine's boot id until
// the test ends: a restart of the machine, as far as runnel can tell, for
// checkpoints and durable points alike. Call it while no Log is open.
func setBootIDForTest(t testing.TB, id [16]byte) {
	t.Helper()
	was := currentBootID
	currentBootID = id
	t.Cleanup(func() { currentBootID = was })
}

// shadowRecorder is the child's sync observer: under shadow it keeps, for
// each file of the log in dir, its content as of its last completed sync
// (shadow/<path>), and for each directory the names it held when last
// synced (shadow/<dir>/.synced-names).
type shadowRecorder struct {
	mu     sync.Mutex // held from the start of a sync to its end
	dir    string
	shadow string
	// The sync in progress: what was there when it began.
	path    string
	content []byte
	isDir   bool
}

const shadowNames = ".synced-names"

func (s *shadowRecorder) observe(e syncEvent) {
	if !e.done {
		s.mu.Lock()
		s.path, s.content, s.isDir = e.path, nil, e.kind == syncDirectory
		if e.fd >= 0 {
			p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", e.fd))
			if err != nil || strings.HasSuffix(p, " (deleted)") {
				p = ""
			}
			s.path = p
		}
		if s.path == "" {
			return
		}
		if s.isDir {
			entries, _ := os.ReadDir(s.path)
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			s.content = []byte(strings.Join(names, "\n"))
		} else {
			s.content, _ = os.ReadFile(s.path)
		}
		return
	}
	defer s.mu.Unlock()
	rel, err := filepath.Rel(s.dir, s.path)
	if e.err != nil || s.path == "" || err != nil || !filepath.IsLocal(rel) {
		return
	}
	target := filepath.Join(s.shadow, rel)
	if s.isDir {
		target = filepath.Join(target, shadowNames)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		panic(err)
	}
	// Written aside and renamed, so that SIGKILL never leaves a torn one.
	if err := os.WriteFile(target+".tmp", s.content, 0o644); err != nil {
		panic(err)
	}
	if err := os.Rename(target+".tmp", target); err != nil {
		panic(err)
	}
}

// plValue is the value of record seq: its number, then padding derived
// from it (mpValue), of a length that varies so frames straddle sectors.
func plValue(seq int64) []byte { return mpValue(0, 0, seq, int(seq*37%1500)) }

// powerLossWriterMain appends plValue records to topic "t" of $RUNNEL_PL_DIR
// from four goroutines, in durability mode $RUNNEL_PL_MODE, printing
// "ack <partition> <offset> <seq>" for each acknowledged one, until killed.
func powerLossWriterMain() int {
	dir, shadow := os.Getenv(plDirEnv), os.Getenv(plShadowEnv)
	mode, err := strconv.Atoi(os.Getenv(plModeEnv))
	if err != nil {
		return mpFail("powerloss-writer", err)
	}
	rec := &shadowRecorder{dir: dir, shadow: shadow}
	obs := rec.observe
	syncObserver.Store(&obs)
	l, err := Open(dir, &Options{Durability: Durability(mode), SyncInterval: 3 * time.Millisecond,
		Backend: BackendPwrite, MaxBatchBytes: 8 << 10, RetentionInterval: -1})
	if err != nil {
		return mpFail("powerloss-writer", err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("powerloss-writer", err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := seq.Add(1)
				pos, err := p.Send(context.Background(), Record{Key: fmt.Appendf(nil, "k%d", s%7), Value: plValue(s)})
				if err != nil {
					mpFail("powerloss-writer", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d %d\n", pos.Partition, pos.Offset, s)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// plAck is an acknowledged record.
type plAck struct {
	part int
	off  int64
	seq  int64
}

func TestPowerLoss(t *testing.T) {
	if testing.Short() && mpRace {
		t.Skip("slow under -race -short")
	}
	kills := mpScale(4, 2, 2)
	images := mpScale(6, 3, 3)
	if n, err := strconv.Atoi(os.Getenv("RUNNEL_PL_KILLS")); err == nil {
		kills = n // a longer soak: RUNNEL_PL_KILLS=100 go test -run TestPowerLoss
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	for _, mode := range []Durability{Durable, Periodic, Buffered} {
		t.Run(mode.String(), func(t *testing.T) {
			for k := range kills {
				powerLossTrial(t, rng, mode, k, images)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// powerLossTrial runs one child until a random moment, kills it, and
// checks images power losses could leave of its log.
func powerLossTrial(t *testing.T, rng *rand.Rand, mode Durability, trial, images int) {
	base := t.TempDir()
	dir, shadow := filepath.Join(base, "log"), filepath.Join(base, "shadow")
	l := openTest(t, dir, &Options{Durability: mode, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 512})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Everything there now was synced by CreateTopic, or is empty.
	copyTree(t, dir, shadow)
	recordSyncedNames(t, dir, shadow)

	cmd := mpChild("powerloss-writer", plDirEnv+"="+dir, plShadowEnv+"="+shadow, plModeEnv+"="+strconv.Itoa(int(mode)))
	_, stdout := startPiped(t, cmd)
	lines := mpLines(stdout)
	stopAt := 100 + rng.IntN(900)
	var acks []plAck
	timeout := time.After(60 * time.Second)
	for len(acks) < stopAt {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("trial %d: the writer exited after %d acks", trial, len(acks))
			}
			acks = append(acks, parseAck(t, line))
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("trial %d: %d acks in 60s", trial, len(acks))
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for line := range lines {
		acks = append(acks, parseAck(t, line))
	}
	cmd.Wait()

	durable := syncedRecords(t, shadow)
	if mode == Durable {
		for _, a := range acks {
			if durable[a.part][a.off] != a.seq {
				t.Fatalf("trial %d: record %d acknowledged at %d/%d as durable, but the synced files hold %d there",
					trial, a.seq, a.part, a.off, durable[a.part][a.off])
			}
		}
	}
	for i := range images {
		img := filepath.Join(base, fmt.Sprintf("image%d", i))
		buildPowerLossImage(t, rng, dir, shadow, img)
		if keep := os.Getenv("RUNNEL_PL_KEEP"); keep != "" {
			copyTree(t, img, filepath.Join(keep, "image"))
			copyTree(t, shadow, filepath.Join(keep, "shadow"))
			copyTree(t, dir, filepath.Join(keep, "current"))
		}
		checkPowerLossImage(t, fmt.Sprintf("%v trial %d image %d", mode, trial, i), mode, img, durable, acks)
		if t.Failed() {
			return
		}
	}
}

func parseAck(t *testing.T, line string) plAck {
	var a plAck
	if _, err := fmt.Sscanf(line, "ack %d %d %d", &a.part, &a.off, &a.seq); err != nil {
		t.Fatalf("writer said %q: %v", line, err)
	}
	return a
}

// recordSyncedNames records every directory under dir as synced with the
// names it holds now.
func recordSyncedNames(t *testing.T, dir, shadow string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		rel, _ := filepath.Rel(dir, path)
		return os.WriteFile(filepath.Join(shadow, rel, shadowNames), []byte(strings.Join(names, "\n")), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// syncedRecords returns, by partition and offset, the sequence number of
// every record the synced files hold in the unbroken run of good frames
// from the start of each partition through segments whose names were
// synced: what a power loss cannot take.
func syncedRecords(t *testing.T, shadow string) map[int]map[int64]int64 {
	t.Helper()
	out := map[int]map[int64]int64{}
	for part := range 2 {
		out[part] = map[int64]int64{}
		pdir := filepath.Join(shadow, "topics", "t", strconv.Itoa(part))
		names, _ := os.ReadFile(filepath.Join(pdir, shadowNames))
		next := int64(0)
		for {
			name := filepath.Base(segmentPath("", next, logExt))
			if !slices.Contains(strings.Split(string(names), "\n"), name) {
				break
			}
			f, err := os.Open(filepath.Join(pdir, name))
			if err != nil {
				break
			}
			c := newCursor(f, f.Name(), 0, next)
			_, st, _ := c.walk(func(fr segFrame) bool {
				if fr.meta.Kind == frame.KindRecords {
					it := frame.NewRecords(fr.data, fr.meta)
					var r frame.Record
					for off := fr.meta.Base; it.Next(&r); off++ {
						v, err := mpParse(r.Value)
						if err != nil {
							t.Fatalf("synced record %d/%d: %v", part, off, err)
						}
						out[part][off] = v.Seq
					}
				}
				return true
			})
			f.Close()
			if st != frameSeal {
				break
			}
			next = c.next
		}
	}
	return out
}

// buildPowerLossImage writes into img what a power loss may leave of the
// log in dir, whose synced state shadow records (see the top of the file).
func buildPowerLossImage(t *testing.T, rng *rand.Rand, dir, shadow, img string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		target := filepath.Join(img, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		names, _ := os.ReadFile(filepath.Join(shadow, filepath.Dir(rel), shadowNames))
		named := slices.Contains(strings.Split(string(names), "\n"), d.Name())
		if !named && rng.IntN(2) == 0 {
			return nil // its directory entry never reached the disk
		}
		cur, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		synced, _ := os.ReadFile(filepath.Join(shadow, rel))
		size := len(cur)
		if len(synced) != len(cur) && rng.IntN(3) == 0 {
			size = len(synced) // the size change was not persisted
		}
		out := make([]byte, size)
		for sec := 0; sec < size; sec += 512 {
			end := min(sec+512, size)
			switch {
			case sec < len(synced) && rng.IntN(2) == 0:
				copy(out[sec:end], synced[sec:min(end, len(synced))]) // stale: as synced
			case sec >= len(synced) && rng.IntN(3) == 0:
				// zeroed: allocated, never written
			default:
				copy(out[sec:end], cur[min(sec, len(cur)):min(end, len(cur))]) // kept
			}
		}
		return os.WriteFile(target, out, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkPowerLossImage restarts the machine on img and checks what the log
// makes of it.
func checkPowerLossImage(t *testing.T, name string, mode Durability, img string, durable map[int]map[int64]int64, acks []plAck) {
	t.Helper()
	setBootIDForTest(t, [16]byte{0xb0, 0x07, byte(rand.Uint32()), byte(rand.Uint32()), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	l := openTest(t, img, &Options{Durability: mode, RetentionInterval: -1})
	acked := map[[2]int64]int64{}
	for _, a := range acks {
		acked[[2]int64{int64(a.part), a.off}] = a.seq
	}

	// Appends after the restart: each partition's first one recovers it.
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	after := map[[2]int64]int64{}
	for part := range 2 {
		for i := range 3 {
			seq := int64(1_000_000 + part*10 + i)
			pos, err := p.Send(context.Background(), Record{Partition: part, Value: plValue(seq)})
			if err != nil {
				t.Fatalf("%s: append to partition %d after the restart: %v (recoveries %+v)", name, part, err, l.Recoveries())
			}
			after[[2]int64{int64(part), pos.Offset}] = seq
		}
	}

	// Everything readable, nothing that was not written, the durable
	// records and the appends after the restart all there.
	c := mustConsumer(t, l, "t", nil)
	defer c.Close()
	got := map[[2]int64]int64{}
	for {
		recs, err := c.TryPoll()
		if err != nil {
			t.Fatalf("%s: reading after recovery: %v (recoveries %+v)", name, err, l.Recoveries())
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			v, err := mpParse(r.Value)
			if err != nil {
				t.Fatalf("%s: record %d/%d: %v", name, r.Partition, r.Offset, err)
			}
			key := [2]int64{int64(r.Partition), r.Offset}
			// Periodic and Buffered modes acknowledge before the sync: a
			// power loss may take such records, and their offsets go to
			// later ones.
			if seq, ok := acked[key]; ok && seq != v.Seq && mode == Durable {
				t.Fatalf("%s: offset %d/%d holds record %d, but %d was acknowledged there", name, r.Partition, r.Offset, v.Seq, seq)
			}
			got[key] = v.Seq
		}
	}
	for part, recs := range durable {
		for off, seq := range recs {
			if got[[2]int64{int64(part), off}] != seq {
				t.Fatalf("%s: synced record %d at %d/%d is gone after recovery (recoveries %+v)", name, seq, part, off, l.Recoveries())
			}
		}
	}
	for key, seq := range after {
		if got[key] != seq {
			t.Fatalf("%s: record %d acknowledged after the restart at %d/%d reads as %d", name, seq, key[0], key[1], got[key])
		}
	}
	for _, rep := range l.Recoveries() {
		if rep.LostTo > rep.LostFrom && rep.LostFrom < int64(len(durable[partOf(rep.Partition)])) {
			t.Errorf("%s: a recovery reports synced offsets %d to %d lost: %+v", name, rep.LostFrom, rep.LostTo-1, rep)
		}
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("%s: Verify after recovery: %v", name, rep.Problems)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// partOf returns the partition number of a partition directory.
func partOf(dir string) int {
	n, err := strconv.Atoi(filepath.Base(dir))
	if err != nil {
		panic(errors.New("not a partition directory: " + dir))
	}
	return n
}
