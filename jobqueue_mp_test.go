package runnel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The job queue of issue 10, with real processes: one producer process and
// worker processes in group "workers". One worker is SIGKILLed mid-stream,
// one stops cleanly, one joins late. Whatever the commit style, no job may
// be lost, and the only jobs handled twice are ones the killed worker
// handled after its last commit.

// Commit styles of the jobworker child.
const (
	jobsPollCommit   = "poll"   // Poll, handle the batch, Commit
	jobsRecordCommit = "record" // Records, Commit after each record
	jobsEveryCommit  = "every"  // Records, Commit every 7 records
	jobsAutoCommit   = "auto"   // Records with auto-commit
	jobsPool         = "pool"   // Poll feeds 4 worker goroutines that mark; CommitMarked and auto-commit of marks
)

func init() {
	childMains["jobworker"] = jobWorkerMain
	childMains["jobproducer"] = jobProducerMain
}

// jobProducerMain sends jobs to topic "jobs" of $RUNNEL_JOBS_DIR: for each
// line "from to" on stdin, jobs from to to-1 (value "job-<i>", partition
// i mod the partition count), then "sent <to>" once they are acknowledged.
func jobProducerMain() int {
	l, err := Open(os.Getenv("RUNNEL_JOBS_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("jobproducer", err)
	}
	defer l.Close()
	p, err := l.Producer("jobs", &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		return mpFail("jobproducer", err)
	}
	info, err := l.DescribeTopic("jobs")
	if err != nil {
		return mpFail("jobproducer", err)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var from, to int
		if _, err := fmt.Sscan(sc.Text(), &from, &to); err != nil {
			return mpFail("jobproducer", err)
		}
		for i := from; i < to; i++ {
			p.SendAsync(Record{Partition: i % len(info.Partitions), Value: fmt.Appendf(nil, "job-%d", i)}, nil)
		}
		if err := p.Flush(context.Background()); err != nil {
			return mpFail("jobproducer", err)
		}
		fmt.Printf("sent %d\n", to)
	}
	return 0
}

// jobWorkerMain is a worker process: a member of group "workers" on topic
// "jobs" of $RUNNEL_JOBS_DIR that commits in style $RUNNEL_JOBS_STYLE. It
// reports on stdout in groupmember's protocol (group_mp_test.go):
//
//	ready, assigned <ns> <p>..., revoked <ns> <p>..., closed
//	r <p> <offset>     a job handled
//	c <p> <offset>     a commit of offset that completed (not the pool)
//	hung               it handled $RUNNEL_JOBS_HANG jobs and stopped dead
//
// With $RUNNEL_JOBS_HANG it stops dead, without committing, right after
// the report that takes it to that many jobs, and waits to be killed. It
// leaves the group cleanly — committing what it handled — when its stdin
// closes.
func jobWorkerMain() int {
	fail := func(err error) int { return mpFail("jobworker "+os.Getenv("RUNNEL_GM_NAME"), err) }
	style := os.Getenv("RUNNEL_JOBS_STYLE")
	hangAfter, _ := strconv.Atoi(os.Getenv("RUNNEL_JOBS_HANG"))
	l, err := Open(os.Getenv("RUNNEL_JOBS_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()

	var outMu sync.Mutex
	handled := 0
	// report writes lines about n handled jobs (n may be 0), in one write,
	// and stops dead once the hang count is reached.
	report := func(lines []byte, n int) {
		outMu.Lock()
		os.Stdout.Write(lines)
		handled += n
		if hangAfter > 0 && handled >= hangAfter {
			os.Stdout.WriteString("hung\n")
			for { // until SIGKILL; outMu stays held, so nobody reports
				time.Sleep(time.Hour)
			}
		}
		outMu.Unlock()
	}
	event := func(kind string, ps []int) {
		b := fmt.Appendf(nil, "%s %d", kind, time.Now().UnixNano())
		for _, p := range ps {
			b = fmt.Appendf(b, " %d", p)
		}
		report(append(b, '\n'), 0)
	}
	var c *Consumer
	// commit commits what was handed over so far and reports it.
	commit := func() error {
		if err := c.Commit(context.Background()); err != nil {
			return err
		}
		var b []byte
		for _, p := range c.Partitions() {
			b = fmt.Appendf(b, "c %d %d\n", p, c.Position(p))
		}
		report(b, 0)
		return nil
	}
	var inflight sync.WaitGroup // the pool's dispatched jobs not yet marked
	var commitErr error
	opts := &ConsumerOptions{
		Group:              "workers",
		MemberName:         os.Getenv("RUNNEL_GM_NAME"),
		DisableAutoCommit:  style != jobsAutoCommit && style != jobsPool,
		AutoCommitMarks:    style == jobsPool,
		AutoCommitInterval: 20 * time.Millisecond,
		OnAssigned:         func(_ *Consumer, ps []int) { event("assigned", ps) },
		OnRevoked: func(c *Consumer, ps []int) {
			// Kafka's rule: before a partition goes, commit what was
			// done with it. Auto-commit has done so already.
			switch style {
			case jobsPool:
				inflight.Wait()
				commitErr = c.CommitMarked(context.Background())
			case jobsAutoCommit:
			default:
				commitErr = commit()
			}
			event("revoked", ps)
		},
	}
	if c, err = l.Consumer("jobs", opts); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	report([]byte("ready\n"), 0)

	line := func(r Record) []byte { return fmt.Appendf(nil, "r %d %d\n", r.Partition, r.Offset) }
	var loopErr error
	switch style {
	case jobsPollCommit:
		for ctx.Err() == nil && loopErr == nil && commitErr == nil {
			recs, err := c.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				loopErr = err
				break
			}
			var b []byte
			for _, r := range recs {
				b = append(b, line(r)...)
			}
			report(b, len(recs))
			if len(recs) > 0 {
				loopErr = commit()
			}
		}
	case jobsRecordCommit, jobsEveryCommit, jobsAutoCommit:
		n := 0
		for r, err := range c.Records(ctx) {
			if err != nil {
				if ctx.Err() == nil {
					loopErr = err
				}
				break
			}
			report(line(r), 1)
			if n++; style == jobsRecordCommit || style == jobsEveryCommit && n%7 == 0 {
				if loopErr = commit(); loopErr != nil {
					break
				}
			}
			if commitErr != nil {
				break
			}
		}
	case jobsPool:
		jobs := make(chan Record, 64)
		var workers sync.WaitGroup
		var poolErr error
		var poolMu sync.Mutex
		for range 4 {
			workers.Add(1)
			go func() {
				defer workers.Done()
				n := 0
				for r := range jobs {
					report(line(r), 1)
					c.MarkRecords(r)
					inflight.Done()
					if n++; n%50 == 0 {
						// Workers commit too, concurrently with each
						// other and with Poll.
						if err := c.CommitMarked(context.Background()); err != nil {
							poolMu.Lock()
							poolErr = err
							poolMu.Unlock()
						}
					}
				}
			}()
		}
		for ctx.Err() == nil && commitErr == nil {
			recs, err := c.Poll(ctx)
			if err != nil && ctx.Err() == nil {
				loopErr = err
				break
			}
			for _, r := range recs {
				// Only the position travels: the bytes are valid until
				// the next Poll.
				inflight.Add(1)
				jobs <- Record{Partition: r.Partition, Offset: r.Offset}
			}
		}
		close(jobs)
		workers.Wait()
		loopErr = poolErr
		if loopErr == nil {
			loopErr = c.CommitMarked(context.Background())
		}
	default:
		return fail(fmt.Errorf("unknown style %q", style))
	}
	if loopErr == nil {
		loopErr = commitErr
	}
	if loopErr == nil && opts.DisableAutoCommit {
		loopErr = commit() // what was handled since the last commit
	}
	if loopErr != nil {
		return fail(loopErr)
	}
	if err := c.Close(); err != nil {
		return fail(err)
	}
	report([]byte("closed\n"), 0)
	return 0
}

func TestJobQueueMultiProcess(t *testing.T) {
	for _, style := range []string{jobsPollCommit, jobsRecordCommit, jobsEveryCommit, jobsAutoCommit, jobsPool} {
		t.Run(style, func(t *testing.T) { runJobQueue(t, style) })
	}
}

func runJobQueue(t *testing.T, style string) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 6
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	n := mpScale(20_000, 6_000, 6_000)
	// Not a multiple of MaxPollRecords: the killed worker dies inside a
	// batch, with jobs fetched that it was never handed.
	hangAfter := n/20 + 137

	prod := mpChild("jobproducer", "RUNNEL_JOBS_DIR="+dir)
	prodIn, prodOut := startPiped(t, prod)
	prodLines := mpLines(prodOut)
	t.Cleanup(func() {
		prodIn.Close()
		prod.Wait()
	})
	produce := func(from, to int) {
		t.Helper()
		fmt.Fprintf(prodIn, "%d %d\n", from, to)
		if got := mpExpectLine(t, prodLines, 60*time.Second); got != fmt.Sprintf("sent %d", to) {
			t.Fatalf("producer: %q", got)
		}
	}
	worker := func(name string, env ...string) *mpMember {
		env = append(env, childEnv+"=jobworker", "RUNNEL_JOBS_DIR="+dir, "RUNNEL_JOBS_STYLE="+style)
		return startMPMember(t, dir, "jobs", "workers", name, env...)
	}

	// Two workers share the partitions; one will die after handling
	// hangAfter jobs, before it commits the last of them.
	victim := worker("victim", fmt.Sprint("RUNNEL_JOBS_HANG=", hangAfter))
	stopped := worker("stopped")
	waitFor(t, 30*time.Second, "3/3 over two workers", func() bool { return mpBalanced(nparts, victim, stopped) })
	phase1, phase2 := n*2/5, n*7/10
	produce(0, phase1)
	select {
	case <-victim.hung:
	case <-victim.exited:
		t.Fatalf("the victim exited: %s", victim.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("the victim did not reach its hang point")
	}
	victimOwned := victim.ownedNow()
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	waitFor(t, 30*time.Second, "the survivor to take everything", func() bool { return len(stopped.ownedNow()) == nparts })

	// A late joiner takes its share from the survivor, which then stops
	// cleanly while jobs keep coming.
	joiner := worker("joiner")
	waitFor(t, 30*time.Second, "3/3 after the late join", func() bool { return mpBalanced(nparts, stopped, joiner) })
	produce(phase1, phase2)
	waitFor(t, 30*time.Second, "the joiner to handle a job", func() bool { return len(joiner.records()) > 0 })
	stopped.leave(t)
	produce(phase2, n)
	ends := endOffsets(t, l, "jobs")
	// A job lost stays lost: stop waiting after a while and name it below.
	for deadline := time.Now().Add(60 * time.Second); !mpSeenAll(ends, victim, stopped, joiner) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	joiner.leave(t)

	dups := checkRedelivered(t, ends, []*mpMember{victim, stopped, joiner}, victimOwned)
	// The killed worker stopped right after reporting a job, before it
	// committed or marked it: that job at least comes again.
	if dups == 0 {
		t.Errorf("no job handled twice, though the killed worker died before committing its last")
	}
	if handled := len(victim.records()); dups > handled {
		t.Errorf("%d jobs handled twice, more than the %d the killed worker handled", dups, handled)
	}
	t.Logf("%s: %d jobs, killed worker handled %d, %d handled again after it died", style, n, len(victim.records()), dups)
	// Every partition's committed offset is its end: lag 0 and no job left.
	info, err := l.DescribeGroup("workers")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range info.Topics[0].Partitions {
		if gp.Committed != ends[gp.Partition] {
			t.Errorf("partition %d: committed %d, end %d", gp.Partition, gp.Committed, ends[gp.Partition])
		}
	}
}
