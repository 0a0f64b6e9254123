package runnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Multi-process tests: the children are this test binary run again (see
// main_test.go). This file holds the helpers that crash_test.go,
// torn_test.go and bench_mp_test.go share.

// mpRace reports whether the binary was built with -race. Children are the
// same binary, so under the race detector every process is slower and the
// tests scale their work down.
var mpRace = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// mpScale picks a work size: full, or the smaller one under -race or -short.
func mpScale(full, race, short int) int {
	n := full
	if mpRace {
		n = min(n, race)
	}
	if testing.Short() {
		n = min(n, short)
	}
	return n
}

// mpChild returns a command that runs this test binary as the child name
// with extra environment. The append backend (RUNNEL_TEST_BACKEND) is
// inherited, so a child uses the same backend as its parent.
func mpChild(name string, env ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+name,
		// The race runtime otherwise sleeps a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// mpOptions is testOptions for child processes, which have no testing.TB.
func mpOptions(o Options) *Options {
	if o.Backend == BackendAuto {
		o.Backend = os.Getenv("RUNNEL_TEST_BACKEND")
	}
	return &o
}

// mpFail reports a child's failure on stderr and returns its exit code.
func mpFail(who string, err error) int {
	fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
	return 1
}

// monoNow reads CLOCK_MONOTONIC, which every process on the machine shares:
// a timestamp taken in one process can be subtracted in another.
func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// A test value names its producer, the producer's incarnation (restarts in
// the crash test) and its sequence number, followed by padding derived from
// them, so that a reader can check every byte:
//
//	p<producer>.i<incarnation>.s<seq>|<pad>
type mpVal struct {
	P, Inc int
	Seq    int64
}

func mpValue(p, inc int, seq int64, padLen int) []byte {
	v := fmt.Appendf(nil, "p%d.i%d.s%d|", p, inc, seq)
	for j := range padLen {
		v = append(v, mpPadByte(p, seq, j))
	}
	return v
}

func mpPadByte(p int, seq int64, j int) byte {
	return byte('a' + (int64(p)*7+seq+int64(j))%26)
}

// mpParse decodes and checks a value made by mpValue.
func mpParse(v []byte) (mpVal, error) {
	var r mpVal
	head, pad, ok := bytes.Cut(v, []byte("|"))
	if !ok {
		return r, fmt.Errorf("value %q has no '|'", v)
	}
	fields := strings.Split(string(head), ".")
	if len(fields) != 3 || !strings.HasPrefix(fields[0], "p") || !strings.HasPrefix(fields[1], "i") || !strings.HasPrefix(fields[2], "s") {
		return r, fmt.Errorf("value %q is not p<n>.i<n>.s<n>|", v)
	}
	var err1, err2, err3 error
	r.P, err1 = strconv.Atoi(fields[0][1:])
	r.Inc, err2 = strconv.Atoi(fields[1][1:])
	r.Seq, err3 = strconv.ParseInt(fields[2][1:], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || r.P < 0 || r.Inc < 0 || r.Seq < 0 {
		return r, fmt.Errorf("value %q: bad numbers", v)
	}
	for j, b := range pad {
		if b != mpPadByte(r.P, r.Seq, j) {
			return r, fmt.Errorf("value %q: padding byte %d is %q", v, j, b)
		}
	}
	return r, nil
}

// startPiped starts cmd with pipes to its standard input and output. The
// caller sees to killing and waiting for it.
func startPiped(t testing.TB, cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}

// mpLines reads lines from r and sends them on the returned channel, which
// is closed at EOF.
func mpLines(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}()
	return ch
}

// mpExpectLine waits for the next line from a child.
func mpExpectLine(t testing.TB, lines <-chan string, timeout time.Duration) string {
	t.Helper()
	select {
	case s, ok := <-lines:
		if !ok {
			t.Fatal("child exited early")
		}
		return s
	case <-time.After(timeout):
		t.Fatalf("no line from child within %v", timeout)
	}
	return ""
}

func init() {
	childMains["mp-producer"] = mpProducerMain
	childMains["mp-wake"] = mpWakeMain
}

// mpProducerMain is one producer process of TestMultiProcessProducers. It
// opens $RUNNEL_MP_DIR, says "ready", waits for a line on stdin, sends
// $RUNNEL_MP_N records for producer $RUNNEL_MP_ID to topic $RUNNEL_MP_TOPIC
// ($RUNNEL_MP_MODE "async": SendAsync and Flush; "send": Send), and writes
// the acknowledged offsets, one little-endian int64 per sequence number, to
// $RUNNEL_MP_OUT.
func mpProducerMain() int {
	id, _ := strconv.Atoi(os.Getenv("RUNNEL_MP_ID"))
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_MP_N"))
	who := fmt.Sprintf("producer %d", id)
	l, err := Open(os.Getenv("RUNNEL_MP_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail(who, err)
	}
	defer l.Close()
	p, err := l.Producer(os.Getenv("RUNNEL_MP_TOPIC"), nil)
	if err != nil {
		return mpFail(who, err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return mpFail(who, err)
	}
	offs := make([]int64, n)
	ctx := context.Background()
	switch os.Getenv("RUNNEL_MP_MODE") {
	case "send":
		for seq := range n {
			pos, err := p.Send(ctx, Record{Value: mpValue(id, 0, int64(seq), seq%23)})
			if err != nil {
				return mpFail(who, fmt.Errorf("Send %d: %w", seq, err))
			}
			offs[seq] = pos.Offset
		}
	default:
		var acked atomic.Int64
		var firstErr atomic.Pointer[error]
		for seq := range n {
			p.SendAsync(Record{Value: mpValue(id, 0, int64(seq), seq%23)}, func(pos Position, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
				offs[seq] = pos.Offset
				acked.Add(1)
			})
		}
		if err := p.Flush(ctx); err != nil {
			return mpFail(who, err)
		}
		if e := firstErr.Load(); e != nil {
			return mpFail(who, *e)
		}
		// Flush promises every record sent before it is acknowledged,
		// which for SendAsync means its callback has run.
		if got := acked.Load(); got != int64(n) {
			return mpFail(who, fmt.Errorf("Flush returned with %d of %d callbacks run", got, n))
		}
	}
	out := make([]byte, 8*n)
	for i, o := range offs {
		binary.LittleEndian.PutUint64(out[8*i:], uint64(o))
	}
	if err := os.WriteFile(os.Getenv("RUNNEL_MP_OUT"), out, 0o644); err != nil {
		return mpFail(who, err)
	}
	if err := l.Close(); err != nil {
		return mpFail(who, err)
	}
	return 0
}

// TestMultiProcessProducers runs four producer processes into one
// partition at once and checks that every acknowledged record is there
// exactly once, at the offset it was acknowledged with, in its producer's
// order, with offsets contiguous from 0 and nothing else in the log.
func TestMultiProcessProducers(t *testing.T) {
	const producers = 4
	n := mpScale(50_000, 10_000, 10_000)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	// Small segments, so that the producers also race to roll them.
	mustCreate(t, l, "mp", TopicConfig{Partitions: 1, SegmentBytes: 1 << 20})

	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		lines <-chan string
		out   string
	}
	var kids []child
	for id := range producers {
		mode := "async"
		if id == producers-1 {
			mode = "send" // one producer acknowledges record by record
		}
		out := filepath.Join(t.TempDir(), "offsets")
		cmd := mpChild("mp-producer",
			"RUNNEL_MP_DIR="+dir, "RUNNEL_MP_TOPIC=mp", "RUNNEL_MP_ID="+strconv.Itoa(id),
			"RUNNEL_MP_N="+strconv.Itoa(n), "RUNNEL_MP_MODE="+mode, "RUNNEL_MP_OUT="+out)
		stdin, stdout := startPiped(t, cmd)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		kids = append(kids, child{cmd, stdin, mpLines(stdout), out})
	}
	for _, k := range kids {
		if s := mpExpectLine(t, k.lines, 30*time.Second); s != "ready" {
			t.Fatalf("child said %q, want ready", s)
		}
	}
	start := time.Now()
	for _, k := range kids {
		io.WriteString(k.stdin, "go\n")
	}
	for id, k := range kids {
		for range k.lines {
		}
		if err := k.cmd.Wait(); err != nil {
			t.Fatalf("producer %d: %v", id, err)
		}
	}
	elapsed := time.Since(start)
	total := producers * n
	t.Logf("%d processes × %d records in %v: %.0f records/s", producers, n, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())

	acked := make([][]int64, producers)
	for id, k := range kids {
		data, err := os.ReadFile(k.out)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != 8*n {
			t.Fatalf("producer %d acknowledged %d records, want %d", id, len(data)/8, n)
		}
		acked[id] = make([]int64, n)
		for i := range n {
			acked[id][i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
		}
	}

	// A fresh Log, as a process that was not there sees it.
	l2 := openTest(t, dir, nil)
	recs := readAll(t, l2, "mp", total, nil)
	checkProducerRecords(t, recs, acked)
	if more := readAvailable(t, l2, "mp"); len(more) != total {
		t.Errorf("log holds %d records, want exactly %d", len(more), total)
	}
	if info, err := l2.DescribeTopic("mp"); err != nil || info.Partitions[0].NextOffset != int64(total) {
		t.Errorf("DescribeTopic: %+v, %v; want next offset %d", info, err, total)
	}
}

// checkProducerRecords checks records read from offset 0 against what each
// producer had acknowledged: acked[p][seq] is the offset of producer p's
// record seq.
func checkProducerRecords(t testing.TB, recs []Record, acked [][]int64) {
	t.Helper()
	next := make([]int64, len(acked))
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d: offsets not contiguous from 0", i, r.Offset)
		}
		v, err := mpParse(r.Value)
		if err != nil {
			t.Fatalf("offset %d: %v", r.Offset, err)
		}
		if v.P >= len(acked) {
			t.Fatalf("offset %d: unknown producer %d", r.Offset, v.P)
		}
		if v.Seq != next[v.P] {
			t.Fatalf("offset %d: producer %d record %d, want %d (duplicate, lost or reordered)", r.Offset, v.P, v.Seq, next[v.P])
		}
		if want := acked[v.P][v.Seq]; want != r.Offset {
			t.Fatalf("producer %d record %d is at offset %d, acknowledged at %d", v.P, v.Seq, r.Offset, want)
		}
		next[v.P]++
	}
	for p, n := range next {
		if n != int64(len(acked[p])) {
			t.Errorf("producer %d: %d records in the log, %d acknowledged", p, n, len(acked[p]))
		}
	}
}

// mpWakeMain is the consumer process of TestMultiProcessWake: it waits in
// Poll on topic $RUNNEL_MP_TOPIC, and for each of $RUNNEL_MP_N records
// prints "lat <ns>": the CLOCK_MONOTONIC time from the timestamp in the
// record's value to its delivery.
func mpWakeMain() int {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_MP_N"))
	l, err := Open(os.Getenv("RUNNEL_MP_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("wake", err)
	}
	defer l.Close()
	c, err := l.Consumer(os.Getenv("RUNNEL_MP_TOPIC"), nil)
	if err != nil {
		return mpFail("wake", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		now := monoNow()
		if err != nil {
			return mpFail("wake", err)
		}
		for _, r := range recs {
			sent, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil {
				return mpFail("wake", fmt.Errorf("value %q", r.Value))
			}
			fmt.Printf("lat %d\n", now-sent)
			got++
		}
	}
	return 0
}

// waitSleeper waits until a reader sleeps on the partition's wake-up word.
func waitSleeper(t testing.TB, m *metaMap, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for m.sleeping.count().Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reader asleep on the partition after %v", timeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestMultiProcessWake checks that a consumer process asleep in Poll on an
// empty partition wakes when this process appends, and logs how fast (the
// benchmarks measure it; a loaded machine stretches any one wake-up).
func TestMultiProcessWake(t *testing.T) {
	const rounds = 5
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "wake", TopicConfig{Partitions: 1})
	cmd := mpChild("mp-wake", "RUNNEL_MP_DIR="+dir, "RUNNEL_MP_TOPIC=wake", "RUNNEL_MP_N="+strconv.Itoa(rounds))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := mpLines(stdout)

	m, err := openMeta(filepath.Join(dir, "topics", "wake", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	p, _ := l.Producer("wake", nil)
	var lats []time.Duration
	for i := range rounds {
		// The child is in the kernel, not just between two looks.
		waitSleeper(t, m, 30*time.Second)
		time.Sleep(20 * time.Millisecond)
		if _, err := p.Send(context.Background(), Record{Value: strconv.AppendInt(nil, monoNow(), 10)}); err != nil {
			t.Fatal(err)
		}
		s := mpExpectLine(t, lines, 10*time.Second)
		ns, err := strconv.ParseInt(strings.TrimPrefix(s, "lat "), 10, 64)
		if err != nil {
			t.Fatalf("child said %q", s)
		}
		lat := time.Duration(ns)
		lats = append(lats, lat)
		if lat <= 0 {
			t.Errorf("round %d: woke %v after the send, before it", i, lat)
		}
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consumer process: %v", err)
	}
	t.Logf("cross-process wake-up latency (send → Poll returns), %d rounds: %v", rounds, lats)
}

// TestMultiProcessTwoLogs opens one directory twice in one process: the two
// Logs must behave like two processes, taking turns at the writer lock and
// never handing out an offset twice.
func TestMultiProcessTwoLogs(t *testing.T) {
	const logs, senders = 2, 3
	n := mpScale(10_000, 2_000, 2_000) // per sender
	dir := t.TempDir()
	var ls [logs]*Log
	for i := range ls {
		ls[i] = openTest(t, dir, &Options{Durability: Buffered})
	}
	// Small segments: the two Logs also take turns at rolling.
	mustCreate(t, ls[0], "two", TopicConfig{Partitions: 1, SegmentBytes: minSegmentBytes})

	// Producer id = log*senders + sender.
	acked := make([][]int64, logs*senders)
	var wg sync.WaitGroup
	errs := make(chan error, logs*senders)
	for li, l := range ls {
		p, err := l.Producer("two", nil)
		if err != nil {
			t.Fatal(err)
		}
		for s := range senders {
			id := li*senders + s
			acked[id] = make([]int64, n)
			wg.Go(func() {
				if s == 0 {
					// One sender per Log pipelines with SendAsync.
					var mu sync.Mutex
					var firstErr error
					for seq := range n {
						p.SendAsync(Record{Value: mpValue(id, 0, int64(seq), seq%31)}, func(pos Position, err error) {
							mu.Lock()
							defer mu.Unlock()
							if err != nil && firstErr == nil {
								firstErr = err
							}
							acked[id][seq] = pos.Offset
						})
					}
					err := p.Flush(context.Background())
					mu.Lock()
					errs <- errors.Join(err, firstErr)
					mu.Unlock()
					return
				}
				for seq := range n {
					pos, err := p.Send(context.Background(), Record{Value: mpValue(id, 0, int64(seq), seq%31)})
					if err != nil {
						errs <- err
						return
					}
					acked[id][seq] = pos.Offset
				}
				errs <- nil
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := logs * senders * n
	var all []int64
	for _, offs := range acked {
		all = append(all, offs...)
	}
	slices.Sort(all)
	for i, o := range all {
		if o != int64(i) {
			t.Fatalf("acknowledged offsets are not 0..%d each once: position %d holds %d", total-1, i, o)
		}
	}
	for li, l := range ls {
		recs := readAll(t, l, "two", total, nil)
		t.Run(fmt.Sprintf("read through log %d", li), func(t *testing.T) {
			checkProducerRecords(t, recs, acked)
		})
	}

	// A consumer of one Log asleep in Poll wakes on the other's append.
	c, err := ls[1].Consumer("two", &ConsumerOptions{Start: Latest})
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan []Record, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Errorf("Poll: %v", err)
		}
		woke <- recs
	}()
	m, err := openMeta(filepath.Join(dir, "topics", "two", "0"))
	if err != nil {
		t.Fatal(err)
	}
	waitSleeper(t, m, 10*time.Second)
	m.close()
	p0, _ := ls[0].Producer("two", nil)
	sent := time.Now()
	if pos, err := p0.Send(context.Background(), Record{Value: []byte("wake up")}); err != nil || pos.Offset != int64(total) {
		t.Fatalf("Send: %+v, %v", pos, err)
	}
	if recs := <-woke; len(recs) != 1 || recs[0].Offset != int64(total) {
		t.Errorf("the other Log's consumer woke with %d records", len(recs))
	} else {
		t.Logf("consumer of the other Log woke %v after Send started", time.Since(sent))
	}
	c.Close()

	for _, l := range ls {
		if st := l.Stats(); st.Repairs != 0 {
			t.Errorf("a Log repaired %d tails; a live writer's frames are not a dead writer's", st.Repairs)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := verifyPartition(t, filepath.Join(dir, "topics", "two", "0")); got != int64(total)+1 {
		t.Errorf("verify: %d records on disk, want %d", got, total+1)
	}
}
