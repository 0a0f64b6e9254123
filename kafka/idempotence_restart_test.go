package kafka

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIdempotenceAcrossRestart: a server process stores an idempotent
// producer's batches and is killed (SIGKILL: nothing is closed cleanly);
// a server started anew on the directory answers the producer's retries
// of them with their original offsets, without storing them again, and
// carries on the producer's sequences and epoch.
func TestIdempotenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic("idem", runnel.TopicConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	child := startServerChild(t, dir)
	rc := dialRaw(t, child.addr)
	pid, epoch := rc.initProducer()
	type step struct {
		partition int32
		seq       int32
		epoch     int16
		value     string
		wantCode  int16
		wantOff   int64
	}
	run := func(rc *rawConn, steps []step) {
		t.Helper()
		for i, s := range steps {
			code, off := produceCode(t, rc.request(produceBatch("idem", s.partition, pid, s.epoch, s.seq, s.value, 9)))
			if code != s.wantCode || s.wantCode == 0 && off != s.wantOff {
				t.Fatalf("step %d (partition %d, seq %d): code %d offset %d, want code %d offset %d",
					i, s.partition, s.seq, code, off, s.wantCode, s.wantOff)
			}
		}
	}
	run(rc, []step{
		{0, 0, epoch, "a", 0, 0},
		{0, 1, epoch, "b", 0, 1},
		{1, 0, epoch, "x", 0, 0},
	})
	child.kill()
	child.cmd.Wait()

	l, err = runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ts := startServerOn(t, l, nil)
	rc = ts.raw()
	run(rc, []step{
		{0, 1, epoch, "b", 0, 1}, // retries: the original offsets
		{0, 0, epoch, "a", 0, 0},
		{1, 0, epoch, "x", 0, 0},
		{0, 2, epoch, "c", 0, 2}, // the sequence carries on
		{0, 4, epoch, "e", kerr.OutOfOrderSequenceNumber.Code, -1},
		{1, 1, epoch - 1, "y", kerr.InvalidProducerEpoch.Code, -1},
	})
	if st := ts.srv.Stats(); st.DuplicateBatches != 3 || st.JournalMismatches != 0 {
		t.Errorf("Stats after the retries: %d duplicates, %d journal mismatches; want 3 and 0", st.DuplicateBatches, st.JournalMismatches)
	}
	var got []string
	for _, r := range readNative(t, l, "idem", 4) {
		got = append(got, string(r.Value))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c", "x"}) {
		t.Errorf("the topic holds %q, want a, b, c and x once each", got)
	}

	// Deleting the topic over Kafka removes its journals.
	journals := filepath.Join(dir, stateDir, producersDir, "idem")
	if _, err := os.Stat(journals); err != nil {
		t.Fatalf("the topic's journals: %v", err)
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TimeoutMillis, dt.TopicNames = 4, 30000, []string{"idem"}
	if dr := rc.request(dt).(*kmsg.DeleteTopicsResponse); len(dr.Topics) != 1 || dr.Topics[0].ErrorCode != 0 {
		t.Fatalf("DeleteTopics: %+v", dr.Topics)
	}
	if _, err := os.Stat(journals); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted topic's journals: %v, want them gone", err)
	}
}

// TestIdempotentProducerAcrossRestart: a franz-go idempotent producer's
// batches are stored by a server process that dies (SIGKILL) before it
// answers; the producer retries them against a server started anew on
// the same directory and address, and gets their original offsets, with
// nothing stored twice.
func TestIdempotentProducerAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("idem", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	const n = 3
	first, offsets := produceThroughDyingServer(t, l, dir, n)
	startChild(t, "server", dir, childListenEnv+"="+first.addr)

	if got := awaitOffsets(t, offsets, n); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Errorf("offsets %v, want the original 0, 1 and 2", got)
	}
	wantValues(t, l, "a", "b", "c")
}

// TestIdempotentProducerToRunningServer: as
// TestIdempotentProducerAcrossRestart, but the producer's retries go to a
// server that ran on the directory all along and had read the
// partition's journal (for another producer's batch) before the dead
// server stored the batches: it takes over the dead server's journal
// file once the producer it does not know sends, and answers with the
// original offsets, storing nothing twice.
func TestIdempotentProducerToRunningServer(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic("idem", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	running := startServerOn(t, l, nil)
	ctx := context.Background()
	other := running.client(kgo.DefaultProduceTopic("idem"))
	if err := other.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const n = 3
	dead, offsets := produceThroughDyingServer(t, l, dir, n)
	// The running server answers on the dead one's address too (and
	// advertises it there), so the client's retries reach it.
	ln, err := net.Listen("tcp", dead.addr)
	if err != nil {
		t.Fatal(err)
	}
	go running.srv.Serve(ln)

	if got := awaitOffsets(t, offsets, n); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("offsets %v, want the original 1, 2 and 3", got)
	}
	wantValues(t, l, "x", "a", "b", "c")
}

// produceThroughDyingServer starts a server process on dir, has an
// idempotent franz-go producer send it n records ("a", "b", ...), waits
// until they are stored in l and their answers held back from the
// client, and kills the server (SIGKILL). It returns the dead server and
// the channel the records' offsets arrive on once the client's retries
// are answered.
func produceThroughDyingServer(t *testing.T, l *runnel.Log, dir string, n int) (*testChild, <-chan int64) {
	t.Helper()
	_, before, err := l.PartitionOffsets("idem", 0)
	if err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(t.TempDir(), "held")
	server := startChild(t, "server", dir, childHoldEnv+"="+held)
	cl, err := kgo.NewClient(kgo.SeedBrokers(server.addr), kgo.DefaultProduceTopic("idem"),
		kgo.ProducerLinger(0), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	offsets := make(chan int64, n)
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Value: []byte{byte('a' + i)}}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("record %q: %v", r.Value, err)
			}
			offsets <- r.Offset
		})
	}
	// Stored, acknowledged, and held back from the client.
	waitFor(t, "the server to hold a produce answer", func() bool {
		_, err := os.Stat(held)
		return err == nil
	})
	waitFor(t, "all records stored", func() bool {
		_, end, err := l.PartitionOffsets("idem", 0)
		return err == nil && end == before+int64(n)
	})
	server.kill()
	server.cmd.Wait()
	return server, offsets
}

// wantValues checks that topic idem holds the values want, once each:
// a record stored twice would follow them.
func wantValues(t *testing.T, l *runnel.Log, want ...string) {
	t.Helper()
	if _, end, err := l.PartitionOffsets("idem", 0); err != nil || end != int64(len(want)) {
		t.Errorf("the topic ends at %d (%v), want %d", end, err, len(want))
	}
	var values []string
	for _, r := range readNative(t, l, "idem", len(want)) {
		values = append(values, string(r.Value))
	}
	if !slices.Equal(values, want) {
		t.Errorf("the topic holds %q, want %q", values, want)
	}
}

// awaitOffsets returns n offsets from offsets, sorted.
func awaitOffsets(t *testing.T, offsets <-chan int64, n int) []int64 {
	t.Helper()
	var got []int64
	for range n {
		select {
		case off := <-offsets:
			got = append(got, off)
		case <-time.After(60 * time.Second):
			t.Fatalf("the producer's records were not acknowledged within 60s of the kill (got %v)", got)
		}
	}
	slices.Sort(got)
	return got
}

// TestInitProducerIDAgain: a producer that asks again, with its current id
// and epoch or with an id or epoch the server does not know (as after a
// restart), gets a new id at epoch 0, as Kafka gives producers without a
// transactional id, not an error its client would take as fatal; the old
// id is not fenced (its batches on a partition move on under it).
func TestInitProducerIDAgain(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("again", 1)
	rc := ts.raw()
	pid, epoch := rc.initProducer()
	seen := map[int64]bool{pid: true}
	for _, ask := range []struct {
		id    int64
		epoch int16
	}{{pid, epoch}, {pid, epoch + 1}, {pid + 1000000, 3}} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.ProducerID, req.ProducerEpoch = 4, ask.id, ask.epoch
		r := rc.request(req).(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != 0 || seen[r.ProducerID] || r.ProducerEpoch != 0 {
			t.Errorf("InitProducerId(%d, %d): code %d, %d, %d; want a new id at epoch 0", ask.id, ask.epoch, r.ErrorCode, r.ProducerID, r.ProducerEpoch)
		}
		seen[r.ProducerID] = true
	}
	if code, off := produceCode(t, rc.request(produceBatch("again", 0, pid, epoch, 0, "old", 9))); code != 0 || off != 0 {
		t.Errorf("a batch of the old id: code %d offset %d, want 0 at 0", code, off)
	}
}

// TestJournalEntryNotInLog: a stopped server's journal names batches at
// offsets the log holds other records at (their frames lost to a power
// loss after their entries reached the disk); a retry of one is stored
// anew, not answered with offsets that hold someone else's records.
func TestJournalEntryNotInLog(t *testing.T) {
	dir := t.TempDir()
	l, err := runnel.Open(dir, &runnel.Options{Durability: runnel.Buffered})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("lost", runnel.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	const pid, epoch = 7000, 0
	// Offsets 0 and 1 hold a native producer's records.
	p, err := l.Producer("lost", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"x", "y"} {
		if _, err := p.Send(context.Background(), runnel.Record{Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := l.TopicID("lost")
	if err != nil {
		t.Fatal(err)
	}
	var w warnings
	j, _, err := openJournal(journalDir(dir, "lost", 0), id, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, stored(pid, epoch, 0, 1, 0, time.Now()), stored(pid, epoch, 1, 1, 1, time.Now()))
	j.close()

	ts := startServerOn(t, l, nil)
	rc := ts.raw()
	for i, v := range []string{"a", "b"} {
		code, off := produceCode(t, rc.request(produceBatch("lost", 0, pid, epoch, int32(i), v, 9)))
		if code != 0 || off != int64(2+i) {
			t.Errorf("retry of seq %d: code %d offset %d, want it stored anew at %d", i, code, off, 2+i)
		}
	}
	var got []string
	for _, r := range readNative(t, l, "lost", 4) {
		got = append(got, string(r.Value))
	}
	if !slices.Equal(got, []string{"x", "y", "a", "b"}) {
		t.Errorf("the topic holds %q, want x, y, a, b", got)
	}
	if !logsContain(ts, "not in the log; stored anew") {
		t.Errorf("no log line for the journal's wrong entry:\n%s", ts.logs.String())
	}
	if st := ts.srv.Stats(); st.JournalMismatches != 1 || st.DuplicateBatches != 0 {
		t.Errorf("Stats: %d journal mismatches, %d duplicates; want 1 (seq 1's entry went with seq 0's) and 0", st.JournalMismatches, st.DuplicateBatches)
	}
}

// TestForgetLoadedBatches: forgetting a loaded batch the log lacks drops
// the producer's later loaded batches with it, not batches this server
// stored; and a retry that found the batch's offsets filled after another
// retry forgot it does not confirm it (the records may be the new store's,
// to be waited for).
func TestForgetLoadedBatches(t *testing.T) {
	var ps producerStates
	ps.init()
	tp := topicPartition{topic: "f"}
	now := time.Now().UnixNano()
	ps.load(tp, foldEntries([]journalEntry{stored(1, 0, 0, 1, 0, time.Unix(0, now)), stored(1, 0, 1, 1, 1, time.Unix(0, now+1)), stored(1, 0, 2, 1, 2, time.Unix(0, now+2))}))
	b1, dup, _ := ps.begin(1, 0, tp, 1, 1)
	if !dup || !ps.unconfirmed(b1) {
		t.Fatalf("seq 1 after loading: dup %v, unconfirmed %v", dup, ps.unconfirmed(b1))
	}
	b0, _, _ := ps.begin(1, 0, tp, 0, 1)
	ps.forgetFrom(1, tp, b1)
	if ps.confirm(1, tp, b1) {
		t.Error("confirm of a forgotten batch")
	}
	// Seq 1 and 2 are gone, 0 stays: seq 1 is next.
	fresh, dup, code := ps.begin(1, 0, tp, 1, 1)
	if dup || code != 0 {
		t.Fatalf("seq 1 after forgetting: dup %v code %d, want a new batch", dup, code)
	}
	ps.finish(fresh, 5, 0)
	// Forgetting seq 0 too leaves the batch stored here after it.
	ps.forgetFrom(1, tp, b0)
	if ps.confirm(1, tp, b0) {
		t.Error("confirm of a forgotten batch")
	}
	if again, dup, _ := ps.begin(1, 0, tp, 1, 1); !dup || again != fresh {
		t.Errorf("the batch stored here was forgotten with the loaded ones")
	}
}
