package runnel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Ten thousand partitions in one Log under the common default descriptor
// limit (ulimit -n 1024): written round-robin, then every eighth topic
// again, after its files were released, then read back by a consumer per
// topic, all of them open at once. The child lowers its own
// RLIMIT_NOFILE, so that running out would fail a Send or a read with
// EMFILE, and counts /proc/self/fd as it goes.

const (
	fdChild     = "fdlimit"
	fdEnvDir    = "RUNNEL_FD_DIR"
	fdEnvTopics = "RUNNEL_FD_TOPICS"
	fdEnvParts  = "RUNNEL_FD_PARTS"
	fdLimit     = 1024
)

func init() { childMains[fdChild] = fdLimitChild }

func TestManyPartitionsUnderFileLimit(t *testing.T) {
	slowAlone(t)
	// Creating a topic and a partition's first append each cost an
	// fsync of a directory; fewer, larger topics make the test faster.
	topics, parts := 625, 16
	if testing.Short() || mpRace || os.Getenv("RUNNEL_TEST_BACKEND") != "" {
		// Still more files than the limit without the budget. The full
		// ten thousand, which the README quotes, are for the pass on the
		// default backend: a minute or more of directory syncs each time.
		topics = 63
	}
	cmd := mpChild(fdChild, fdEnvDir+"="+t.TempDir(), fdEnvTopics+"="+strconv.Itoa(topics), fdEnvParts+"="+strconv.Itoa(parts))
	out, err := cmd.Output()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child (%d topics x %d partitions, RLIMIT_NOFILE %d): %v", topics, parts, fdLimit, err)
	}
	peak := -1
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "peak-fds "); ok {
			peak, _ = strconv.Atoi(v)
		}
	}
	if peak < 0 || peak >= fdLimit {
		t.Fatalf("peak open descriptors %d, want under %d", peak, fdLimit)
	}
}

// openFDs counts the process's open descriptors.
func openFDs() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	return len(ents) - 1, err // less ReadDir's own
}

func fdLimitChild() int {
	fail := func(err error) int { return mpFail(fdChild, err) }
	dir := os.Getenv(fdEnvDir)
	topics, _ := strconv.Atoi(os.Getenv(fdEnvTopics))
	parts, _ := strconv.Atoi(os.Getenv(fdEnvParts))
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fail(err)
	}
	lim.Cur = fdLimit
	if os.Getenv("RUNNEL_FD_MAXOPEN") != "" {
		lim.Cur = lim.Max // measuring without the budget
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fail(err)
	}
	// Buffered: the test is about descriptors, and ten thousand
	// fdatasyncs would only make it slow. Everything else is the default,
	// MaxOpenFiles too: half the limit just set.
	maxOpen, _ := strconv.Atoi(os.Getenv("RUNNEL_FD_MAXOPEN")) // for measuring: 0 is the default
	l, err := Open(dir, mpOptions(Options{Durability: Buffered, MaxOpenFiles: maxOpen}))
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	peak := 0
	sample := func() error {
		n, err := openFDs()
		peak = max(peak, n)
		return err
	}
	began := time.Now()
	name := func(i int) string { return fmt.Sprintf("t%05d", i) }
	for i := range topics {
		if err := l.CreateTopic(name(i), TopicConfig{Partitions: parts}); err != nil {
			return fail(err)
		}
	}
	created := time.Now()
	value := func(i, p, round int) string { return fmt.Sprintf("%s/%d/%d", name(i), p, round) }
	ctx := context.Background()
	const rounds = 2
	prods := make([]*Producer, topics)
	want := func(i int) int { // records sent to each partition of topic i
		if i%8 == 0 {
			return rounds
		}
		return 1
	}
	for round := range rounds {
		for i := range topics {
			if round >= want(i) {
				continue
			}
			if prods[i] == nil {
				if prods[i], err = l.Producer(name(i), nil); err != nil {
					return fail(err)
				}
			}
			for p := range parts {
				base, err := prods[i].SendBatch(ctx, p, []Record{{Value: []byte(value(i, p, round))}})
				if err != nil {
					return fail(fmt.Errorf("round %d: send to %s/%d: %w", round, name(i), p, err))
				}
				if base != int64(round) {
					return fail(fmt.Errorf("send to %s/%d went to offset %d, want %d", name(i), p, base, round))
				}
			}
			if i%64 == 0 {
				if err := sample(); err != nil {
					return fail(err)
				}
			}
		}
	}
	sent := time.Now()
	// Every consumer open at once, each polled in turn until it has its
	// topic's records: a consumer that does not sleep holds no descriptor
	// of its own, and segments are read through the Log's cache.
	sent2 := 0
	for i := range topics {
		sent2 += parts * want(i)
	}
	cons := make([]*Consumer, topics)
	for i := range topics {
		if cons[i], err = l.Consumer(name(i), &ConsumerOptions{Start: Earliest, MaxPollBytes: minMaxPollBytes}); err != nil {
			return fail(err)
		}
	}
	got := make([]map[string]bool, topics)
	for left, pass := topics, 0; left > 0; pass++ {
		if pass > 100 {
			return fail(fmt.Errorf("%d topics still not read back after %d passes", left, pass))
		}
		for i := range topics {
			if got[i] != nil && len(got[i]) == parts*want(i) {
				continue
			}
			if got[i] == nil {
				got[i] = map[string]bool{}
			}
			recs, err := cons[i].TryPoll()
			if err != nil {
				return fail(fmt.Errorf("poll %s: %w", name(i), err))
			}
			for _, r := range recs {
				want := value(i, r.Partition, int(r.Offset))
				if string(r.Value) != want || got[i][want] {
					return fail(fmt.Errorf("%s partition %d offset %d: %q (want %q, once)", name(i), r.Partition, r.Offset, r.Value, want))
				}
				got[i][want] = true
			}
			if len(got[i]) == parts*want(i) {
				left--
			}
			if i%64 == 0 {
				if err := sample(); err != nil {
					return fail(err)
				}
			}
		}
	}
	read := time.Now()
	for _, c := range cons {
		if err := c.Close(); err != nil {
			return fail(err)
		}
	}
	for _, p := range prods {
		if err := p.Close(); err != nil {
			return fail(err)
		}
	}
	st := l.Stats()
	open, segPeak, segOpens := l.segs.stats()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "partitions %d (%d topics x %d), limit %d, MaxOpenFiles %d\n", topics*parts, topics, parts, fdLimit, l.opts.MaxOpenFiles)
	fmt.Fprintf(w, "create %v, send %v (%d records), read %v\n", created.Sub(began).Round(time.Millisecond),
		sent.Sub(created).Round(time.Millisecond), sent2, read.Sub(sent).Round(time.Millisecond))
	fmt.Fprintf(w, "file releases %d, open partitions %d, segment files open %d (peak %d, opened %d)\n",
		st.FileReleases, st.OpenPartitions, open, segPeak, segOpens)
	fmt.Fprintf(w, "peak-fds %d\n", peak)
	return 0
}
