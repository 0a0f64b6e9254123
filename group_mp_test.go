package runnel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The groupmember child is a consumer-group member in its own process. It
// joins group $RUNNEL_GM_GROUP on topic $RUNNEL_GM_TOPIC of the log in
// $RUNNEL_GM_DIR and reports on stdout, one write per event:
//
//	ready                     joined
//	assigned <ns> <p>...      OnAssigned, with the wall-clock time
//	revoked <ns> <p>...       OnRevoked
//	r <p> <offset>            a record Poll returned (not with RUNNEL_GM_QUIET)
//	c <p> <offset>            a commit that completed (manual mode)
//	closed                    left the group cleanly
//	incarnation <slot> <ns>   its Consumer's Incarnation, before ready
//
// With RUNNEL_GM_COMMIT=manual it commits after every batch it has
// reported, or every $RUNNEL_GM_COMMIT_EVERY batches (auto-commit off);
// with RUNNEL_GM_COMMIT=none it never commits; otherwise auto-commit does.
// RUNNEL_GM_LEASE sets ConsumerOptions.Lease (a time.Duration's text). It
// leaves the group when its stdin closes.
func init() {
	childMains["groupmember"] = groupMemberMain
}

func groupMemberMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "groupmember:", err)
		return 1
	}
	out := func(s string) { os.Stdout.WriteString(s) }
	l, err := Open(os.Getenv("RUNNEL_GM_DIR"), &Options{Durability: Buffered, Backend: os.Getenv("RUNNEL_TEST_BACKEND")})
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	manual := os.Getenv("RUNNEL_GM_COMMIT") == "manual"
	never := os.Getenv("RUNNEL_GM_COMMIT") == "none"
	quiet := os.Getenv("RUNNEL_GM_QUIET") != ""
	event := func(kind string, ps []int) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %d", kind, time.Now().UnixNano())
		for _, p := range ps {
			fmt.Fprintf(&b, " %d", p)
		}
		out(b.String() + "\n")
	}
	var lease time.Duration
	if v := os.Getenv("RUNNEL_GM_LEASE"); v != "" {
		if lease, err = time.ParseDuration(v); err != nil {
			return fail(err)
		}
	}
	c, err := l.Consumer(os.Getenv("RUNNEL_GM_TOPIC"), &ConsumerOptions{
		Lease:             lease,
		Group:             os.Getenv("RUNNEL_GM_GROUP"),
		MemberName:        os.Getenv("RUNNEL_GM_NAME"),
		DisableAutoCommit: manual || never,
		OnAssigned:        func(_ *Consumer, ps []int) { event("assigned", ps) },
		OnRevoked:         func(_ *Consumer, ps []int) { event("revoked", ps) },
	})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	inc := c.Incarnation()
	out(fmt.Sprintf("incarnation %d %d\n", inc.slot, inc.joined))
	out("ready\n")
	every, _ := strconv.Atoi(os.Getenv("RUNNEL_GM_COMMIT_EVERY"))
	var buf []byte
	for batch := 1; ; batch++ {
		recs, err := c.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			return fail(err)
		}
		// Records Poll returned count as processed from the next Poll (or
		// Close) on: report them even when leaving.
		if !quiet && len(recs) > 0 {
			buf = buf[:0]
			for _, r := range recs {
				buf = fmt.Appendf(buf, "r %d %d\n", r.Partition, r.Offset)
			}
			out(string(buf))
		}
		if ctx.Err() != nil {
			break
		}
		if manual && !quiet && (every == 0 || batch%every == 0) {
			if err := c.Commit(ctx); err != nil {
				return fail(err)
			}
			buf = buf[:0]
			for _, p := range c.Partitions() {
				buf = fmt.Appendf(buf, "c %d %d\n", p, c.Position(p))
			}
			out(string(buf))
		}
	}
	if err := c.Close(); err != nil {
		return fail(err)
	}
	out("closed\n")
	return 0
}

// mpMember is the parent's view of a groupmember child.
type mpMember struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan struct{}
	hung   chan struct{} // the jobworker child stopped dead (jobqueue_mp_test.go)
	exited chan struct{}
	stderr bytes.Buffer

	mu       sync.Mutex
	owned    map[int]bool
	assigned []assignEvent
	recs     []offsetKey
	commits  map[int]int64 // the last commit reported per partition
	closed   bool

	incarnation Incarnation // its Consumer's, reported before ready
}

type assignEvent struct {
	at    time.Time
	parts []int
}

func startMPMember(t testing.TB, dir, topic, group, name string, env ...string) *mpMember {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &mpMember{name: name, ready: make(chan struct{}), hung: make(chan struct{}), exited: make(chan struct{}),
		owned: map[int]bool{}, commits: map[int]int64{}}
	m.cmd = exec.Command(exe, "-test.run=^$")
	m.cmd.Env = append(os.Environ(), childEnv+"=groupmember",
		"RUNNEL_GM_DIR="+dir, "RUNNEL_GM_TOPIC="+topic, "RUNNEL_GM_GROUP="+group, "RUNNEL_GM_NAME="+name)
	m.cmd.Env = append(m.cmd.Env, env...)
	m.cmd.Stderr = &m.stderr
	var stdout io.Reader
	m.stdin, stdout = startPiped(t, m.cmd)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m.parse(sc.Text())
		}
		m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		<-m.exited
	})
	select {
	case <-m.ready:
	case <-m.exited:
		t.Fatalf("member %s exited: %s", name, m.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("member %s did not start", name)
	}
	return m
}

func (m *mpMember) parse(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	nums := make([]int64, len(f)-1)
	for i, s := range f[1:] {
		nums[i], _ = strconv.ParseInt(s, 10, 64)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch f[0] {
	case "ready":
		close(m.ready)
	case "incarnation":
		m.incarnation = Incarnation{slot: int(nums[0]), joined: nums[1]}
	case "hung":
		close(m.hung)
	case "assigned", "revoked":
		ev := assignEvent{at: time.Unix(0, nums[0])}
		for _, p := range nums[1:] {
			ev.parts = append(ev.parts, int(p))
			m.owned[int(p)] = f[0] == "assigned"
		}
		if f[0] == "assigned" {
			m.assigned = append(m.assigned, ev)
		}
	case "r":
		m.recs = append(m.recs, offsetKey{int(nums[0]), nums[1]})
	case "c":
		m.commits[int(nums[0])] = nums[1]
	case "closed":
		m.closed = true
	}
}

func (m *mpMember) ownedNow() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int
	for p, ok := range m.owned {
		if ok {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// lastCommit returns the last commit m reported for partition p.
func (m *mpMember) lastCommit(p int) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.commits[p]
	return c, ok
}

func (m *mpMember) records() []offsetKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// firstAssigned returns when p was first assigned to m at or after since.
func (m *mpMember) firstAssigned(p int, since time.Time) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range m.assigned {
		if !ev.at.Before(since) && slices.Contains(ev.parts, p) {
			return ev.at, true
		}
	}
	return time.Time{}, false
}

// leave closes the member's stdin, so that it leaves the group cleanly,
// and waits for it to exit.
func (m *mpMember) leave(t testing.TB) {
	t.Helper()
	m.stdin.Close()
	select {
	case <-m.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("member %s did not exit", m.name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		t.Fatalf("member %s did not close cleanly: %s", m.name, m.stderr.String())
	}
}

// kill SIGKILLs the member's process and waits for it to exit: a death,
// which leaves its partitions' owner records (and leases) as they were.
func (m *mpMember) kill(t testing.TB) {
	t.Helper()
	if err := m.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-m.exited
}

func mpBalanced(nparts int, members ...*mpMember) bool {
	return balancedBy(nparts, (*mpMember).ownedNow, members)
}

func mpSeenAll(ends []int64, members ...*mpMember) bool {
	return seenAllBy(ends, (*mpMember).records, members)
}

// backgroundProducer appends one record to every partition every
// interval until stopped.
func backgroundProducer(t *testing.T, l *Log, topic string, nparts int, interval time.Duration) (stop func()) {
	t.Helper()
	p, err := l.Producer(topic, &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for part := range nparts {
				p.SendAsync(Record{Partition: part, Value: []byte("bg")}, nil)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func checkGroupDescribed(t *testing.T, l *Log, group string, members ...*mpMember) {
	t.Helper()
	info, err := l.DescribeGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gt := info.Topics[0]
	byPID := map[int][]int{}
	for _, gm := range gt.Members {
		byPID[gm.PID] = gm.Partitions
	}
	if len(gt.Members) != len(members) {
		t.Fatalf("DescribeGroup lists %d members, want %d: %+v", len(gt.Members), len(members), gt.Members)
	}
	for _, m := range members {
		if got, want := byPID[m.cmd.Process.Pid], m.ownedNow(); !slices.Equal(got, want) {
			t.Errorf("DescribeGroup: member %s owns %v, it says %v", m.name, got, want)
		}
	}
	for _, gp := range gt.Partitions {
		if !gp.Owned || gp.Owner < 0 {
			t.Errorf("DescribeGroup: partition %+v has no owner", gp)
		}
	}
}

// Three member processes share 12 partitions 4/4/4. One is killed with
// SIGKILL: the other two take its partitions (how fast is measured by
// BenchmarkGroupFailover), every record is processed, and the only records
// processed twice are the dead member's, from its last commit on.
func TestGroupMultiProcessFailover(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 12
	mustCreate(t, l, "events", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "events", nparts, 20)

	// The member to be killed commits only every 8th batch, so that it
	// dies with processed records past its last commit.
	var members []*mpMember
	for i := range 3 {
		every := 1
		if i == 0 {
			every = 8
		}
		members = append(members, startMPMember(t, dir, "events", "g", fmt.Sprint("m", i),
			"RUNNEL_GM_COMMIT=manual", fmt.Sprint("RUNNEL_GM_COMMIT_EVERY=", every)))
	}
	waitFor(t, 10*time.Second, "4/4/4 over three processes", func() bool { return mpBalanced(nparts, members...) })
	checkGroupDescribed(t, l, "g", members...)

	stopProducer := backgroundProducer(t, l, "events", nparts, 2*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	victim, survivors := members[0], members[1:]
	lost := victim.ownedNow()
	killed := time.Now()
	victim.kill(t)
	waitFor(t, 10*time.Second, "the dead member's partitions taken over", func() bool {
		return mpBalanced(nparts, survivors...)
	})
	// How fast is for BenchmarkGroupFailover to measure; a busy machine
	// can stretch any one takeover. Here it only has to happen, and to
	// happen after the kill.
	var takeover time.Duration
	for _, p := range lost {
		var at time.Time
		for _, s := range survivors {
			if ts, ok := s.firstAssigned(p, killed); ok && (at.IsZero() || ts.Before(at)) {
				at = ts
			}
		}
		if at.IsZero() {
			t.Errorf("partition %d of the killed member: no survivor reports taking it over", p)
		}
		takeover = max(takeover, at.Sub(killed))
	}
	t.Logf("partitions %v of the killed member taken over %v after SIGKILL", lost, takeover)
	checkGroupDescribed(t, l, "g", survivors...)

	time.Sleep(200 * time.Millisecond)
	stopProducer()
	ends := endOffsets(t, l, "events")
	waitFor(t, 20*time.Second, "every record processed", func() bool { return mpSeenAll(ends, members...) })
	for _, s := range survivors {
		s.leave(t)
	}

	// The killed member commits only every 8th batch, and not when it
	// gives partitions up to the others joining: its records may come
	// again in any partition.
	dups := checkRedelivered(t, ends, members, nil)
	t.Logf("%d records, %d processed twice (after the dead member's last commit)", sum(ends), dups)
}

// checkRedelivered checks that every record below ends was handled by
// exactly one of members, except records of the killed members[0] handled
// again by one other member — only in partitions it owned when it died
// (owned; nil: in any, for a member that gave partitions up without
// committing), and only from its last reported commit on — and returns
// how many of those there are.
func checkRedelivered(t *testing.T, ends []int64, members []*mpMember, owned []int) int {
	t.Helper()
	handledBy := map[offsetKey][]int{}
	for i, m := range members {
		for _, k := range m.records() {
			handledBy[k] = append(handledBy[k], i)
		}
	}
	dups := 0
	for p, end := range ends {
		for off := range end {
			k := offsetKey{p, off}
			switch who := handledBy[k]; {
			case len(who) == 0:
				t.Errorf("%v never handled", k)
			case len(who) == 1:
			case len(who) == 2 && who[0] == 0 && (owned == nil || slices.Contains(owned, p)):
				if c, ok := members[0].lastCommit(p); ok && off < c {
					t.Errorf("%v handled again though the killed member committed %d", k, c)
				}
				dups++
			default:
				t.Errorf("%v handled by members %v (0 is the killed one)", k, who)
			}
		}
	}
	return dups
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// A member that joins later gets its share; a member that leaves cleanly
// hands its partitions over with auto-commit, so no record is processed
// twice.
func TestGroupMultiProcessJoinLeave(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 12
	mustCreate(t, l, "events", TopicConfig{Partitions: nparts})
	produceSpread(t, l, "events", nparts, 20)

	a := startMPMember(t, dir, "events", "g", "a")
	b := startMPMember(t, dir, "events", "g", "b")
	waitFor(t, 10*time.Second, "6/6 over two processes", func() bool { return mpBalanced(nparts, a, b) })
	stopProducer := backgroundProducer(t, l, "events", nparts, 2*time.Millisecond)
	time.Sleep(100 * time.Millisecond)

	c := startMPMember(t, dir, "events", "g", "c")
	waitFor(t, 10*time.Second, "4/4/4 after a late join", func() bool { return mpBalanced(nparts, a, b, c) })
	checkGroupDescribed(t, l, "g", a, b, c)
	time.Sleep(100 * time.Millisecond)

	a.leave(t)
	waitFor(t, 10*time.Second, "6/6 after a clean leave", func() bool { return mpBalanced(nparts, b, c) })
	time.Sleep(100 * time.Millisecond)
	stopProducer()
	ends := endOffsets(t, l, "events")
	waitFor(t, 20*time.Second, "every record processed", func() bool { return mpSeenAll(ends, a, b, c) })
	b.leave(t)
	c.leave(t)

	count := map[offsetKey]int{}
	for _, m := range []*mpMember{a, b, c} {
		for _, k := range m.records() {
			count[k]++
		}
	}
	for p, end := range ends {
		for off := range end {
			if n := count[offsetKey{p, off}]; n != 1 {
				t.Errorf("partition %d offset %d processed %d times", p, off, n)
			}
		}
	}
}
