package runnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A backup taken while four producer processes write to the log and a
// group member commits, restored and checked record by record against what
// the producers had acknowledged before the backup began.

func init() { childMains["backup-producer"] = backupProducerMain }

// bkTopic is the topic TestBackupWhileProducing writes; its partitions.
const (
	bkTopic = "live"
	bkParts = 4
)

// backupProducerMain is one producer process: it opens $RUNNEL_BK_DIR with
// durability $RUNNEL_BK_DURABILITY, says "ready", and once it reads a line
// sends records to topic bkTopic one at a time, record seq to partition
// seq mod bkParts, printing "ack <partition> <offset> <seq>" as each is
// acknowledged, until its standard input ends.
func backupProducerMain() int {
	id, _ := strconv.Atoi(os.Getenv("RUNNEL_BK_ID"))
	who := fmt.Sprintf("producer %d", id)
	d := Buffered
	if os.Getenv("RUNNEL_BK_DURABILITY") == "durable" {
		d = Durable
	}
	l, err := Open(os.Getenv("RUNNEL_BK_DIR"), mpOptions(Options{Durability: d, RetentionInterval: -1}))
	if err != nil {
		return mpFail(who, err)
	}
	defer l.Close()
	p, err := l.Producer(bkTopic, &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		return mpFail(who, err)
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return mpFail(who, err)
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, in)
		close(stop)
	}()
	for seq := int64(0); ; seq++ {
		select {
		case <-stop:
			return 0
		default:
		}
		part := int(seq % bkParts)
		pos, err := p.Send(context.Background(), Record{Partition: part, Value: mpValue(id, 0, seq, int(seq%97))})
		if err != nil {
			return mpFail(who, fmt.Errorf("Send %d: %w", seq, err))
		}
		fmt.Fprintf(out, "ack %d %d %d\n", pos.Partition, pos.Offset, seq)
		if err := out.Flush(); err != nil {
			return mpFail(who, err)
		}
	}
}

// bkAck is one acknowledged record: producer id's record seq, at offset of
// partition.
type bkAck struct {
	id, partition int
	offset, seq   int64
}

// bkAcks collects the producers' acknowledgements as their lines arrive.
type bkAcks struct {
	mu    sync.Mutex
	acks  []bkAck
	count [4]int
	err   error
}

func (a *bkAcks) read(id int, r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		var ack bkAck
		ack.id = id
		if _, err := fmt.Sscanf(s.Text(), "ack %d %d %d", &ack.partition, &ack.offset, &ack.seq); err != nil {
			a.mu.Lock()
			a.err = fmt.Errorf("producer %d said %q", id, s.Text())
			a.mu.Unlock()
			continue
		}
		a.mu.Lock()
		a.acks = append(a.acks, ack)
		a.count[id]++
		a.mu.Unlock()
	}
}

// snapshot returns the acknowledgements received so far, and how many
// there are per producer.
func (a *bkAcks) snapshot() ([]bkAck, [4]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]bkAck(nil), a.acks...), a.count
}

// waitEach waits until every producer has n acknowledgements more than in
// since.
func (a *bkAcks) waitEach(t *testing.T, since [4]int, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, now := a.snapshot()
		done := true
		for i := range now {
			done = done && now[i] >= since[i]+n
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("producers acknowledged %v, waiting for %d more each than %v", now, n, since)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bkCommitter is a group member in this process that reads bkTopic and
// commits after every poll, so that commits land while the backup reads
// the offsets file.
type bkCommitter struct {
	mu        sync.Mutex
	committed map[int]int64 // the last commit that returned, by partition
	stop      chan struct{}
	done      chan error
}

func startCommitter(t *testing.T, l *Log) *bkCommitter {
	t.Helper()
	c, err := l.Consumer(bkTopic, &ConsumerOptions{Group: "audit", Start: Earliest, DisableAutoCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	k := &bkCommitter{committed: map[int]int64{}, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		defer c.Close()
		for {
			select {
			case <-k.stop:
				k.done <- nil
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := c.Poll(ctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				k.done <- err
				return
			}
			if err := c.Commit(context.Background()); err != nil {
				k.done <- err
				return
			}
			k.mu.Lock()
			for _, p := range c.Partitions() {
				k.committed[p] = c.Position(p)
			}
			k.mu.Unlock()
		}
	}()
	return k
}

func (k *bkCommitter) snapshot() map[int]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[int]int64{}
	for p, o := range k.committed {
		out[p] = o
	}
	return out
}

// TestBackupWhileProducing takes a backup while four producer processes
// append to every partition of a topic (two of them durable, two
// buffered) and a group member commits, with the segments rolling under
// the backup. The copy must hold every record acknowledged before the
// backup began, at the offset it was acknowledged with, with its content;
// be a prefix of the log as it was afterwards; pass Verify; carry the
// group's commits made before the backup (and none past its data) and the
// topic's configuration; and take appends.
func TestBackupWhileProducing(t *testing.T) {
	const producers = 4
	const before = 100 // acknowledged per producer before the backup, at least
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, bkTopic, TopicConfig{Partitions: bkParts, SegmentBytes: minSegmentBytes, IndexIntervalBytes: 1024})

	acks := &bkAcks{}
	var kids []*exec.Cmd
	var stdins []io.WriteCloser
	for id := range producers {
		durability := "buffered"
		if id%2 == 0 {
			durability = "durable"
		}
		cmd := mpChild("backup-producer", "RUNNEL_BK_DIR="+dir, "RUNNEL_BK_ID="+strconv.Itoa(id), "RUNNEL_BK_DURABILITY="+durability)
		stdin, stdout := startPiped(t, cmd)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("producer %d said %q, %v", id, line, err)
		}
		go acks.read(id, r)
		kids, stdins = append(kids, cmd), append(stdins, stdin)
	}
	for _, in := range stdins {
		io.WriteString(in, "go\n")
	}
	acks.waitEach(t, [4]int{}, before)
	k := startCommitter(t, l)
	// Several segments in every partition, and commits on each.
	deadline := time.Now().Add(2 * time.Minute)
	for !bkReady(t, l, k) {
		if time.Now().After(deadline) {
			t.Fatal("no three segments and a commit in every partition within two minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// What was acknowledged, and committed, before the backup began.
	known, counts := acks.snapshot()
	committedBefore := k.snapshot()
	var endsAtPlan []int64
	backupHook = func(stage, _ string, _ int, _ int64) {
		if stage != "planned" {
			return
		}
		// The tails are read. More records, and more segments, before
		// anything is copied.
		info, err := l.DescribeTopic(bkTopic)
		if err != nil {
			t.Error(err)
			return
		}
		for _, pi := range info.Partitions {
			endsAtPlan = append(endsAtPlan, pi.NextOffset)
		}
		acks.waitEach(t, counts, mpScale(150, 50, 50))
	}
	t.Cleanup(func() { backupHook = nil })
	dest := filepath.Join(t.TempDir(), "copy")
	rep, err := l.Backup(context.Background(), dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	backupHook = nil

	// Stop the writers and the committer; read the source as it ended.
	for _, in := range stdins {
		in.Close()
	}
	for id, cmd := range kids {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("producer %d: %v", id, err)
		}
	}
	close(k.stop)
	if err := <-k.done; err != nil {
		t.Fatalf("group member: %v", err)
	}
	if _, err := acks.snapshot(); acks.err != nil {
		t.Fatal(acks.err, err)
	}
	source := bkRecords(t, l, bkTopic)

	c := openCopy(t, dest)
	copied := bkRecords(t, c, bkTopic)

	// Every record acknowledged before the backup, by offset and content.
	byOffset := map[[2]int64]Record{}
	for p, recs := range copied {
		for _, r := range recs {
			byOffset[[2]int64{int64(p), r.Offset}] = r
		}
	}
	for _, a := range known {
		r, ok := byOffset[[2]int64{int64(a.partition), a.offset}]
		if !ok {
			t.Fatalf("producer %d's record %d, acknowledged at %d/%d before the backup, is not in the copy", a.id, a.seq, a.partition, a.offset)
		}
		if want := mpValue(a.id, 0, a.seq, int(a.seq%97)); !bytes.Equal(r.Value, want) {
			t.Fatalf("the copy holds %q at %d/%d, where %q was acknowledged", r.Value, a.partition, a.offset, want)
		}
	}

	// A prefix of the log, ending where the plan found the data ending,
	// short of what was written after.
	for p := range bkParts {
		got, all := copied[p], source[p]
		if len(got) > len(all) {
			t.Fatalf("partition %d: the copy holds %d records, the source %d", p, len(got), len(all))
		}
		if diff := diffLarge(all[:len(got)], got); diff != "" {
			t.Errorf("partition %d: the copy is not a prefix of the source (-source +copy):\n%s", p, diff)
		}
		pb := rep.Partitions[p]
		if pb.Partition != p || pb.StartOffset != 0 || pb.NextOffset != int64(len(got)) || pb.Records != int64(len(got)) {
			t.Errorf("partition %d: report %+v, the copy holds %d records", p, pb, len(got))
		}
		if pb.NextOffset > endsAtPlan[p] || endsAtPlan[p] >= int64(len(all)) {
			t.Errorf("partition %d: the copy ends at %d; the data ended at %d just after the plan and at %d in the end", p, pb.NextOffset, endsAtPlan[p], len(all))
		}
		if pb.Segments < 3 {
			t.Errorf("partition %d: %d segments copied; the test wants several", p, pb.Segments)
		}
	}

	// The group's commits: those made before the backup, or later ones,
	// never past the copy's data.
	gi, err := c.DescribeGroup("audit")
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range gi.Topics[0].Partitions {
		if gp.Committed < committedBefore[gp.Partition] || gp.Committed > rep.Partitions[gp.Partition].NextOffset {
			t.Errorf("copy: group audit, partition %d: committed %d; %d was committed before the backup, and the copy ends at %d",
				gp.Partition, gp.Committed, committedBefore[gp.Partition], rep.Partitions[gp.Partition].NextOffset)
		}
	}
	// The topic's configuration and ID, as on disk.
	name := filepath.Join("topics", bkTopic, topicFileName)
	if a, b := readFile(t, filepath.Join(dir, name)), readFile(t, filepath.Join(dest, name)); !bytes.Equal(a, b) {
		t.Errorf("topic.json: copy %q, source %q", b, a)
	}
	// The copy goes on where it ends.
	p := mustProducer(t, c, bkTopic, &ProducerOptions{Partitioner: ManualPartitioner})
	for part := range bkParts {
		pos, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("restored")})
		if err != nil || pos.Offset != rep.Partitions[part].NextOffset {
			t.Errorf("Send to the copy's partition %d: %+v, %v; want offset %d", part, pos, err, rep.Partitions[part].NextOffset)
		}
	}
	if st := c.Stats(); st.Repairs != 0 || st.RecordsLost != 0 {
		t.Errorf("the copy needed repairs: %+v", st)
	}
	t.Logf("%d records acknowledged before the backup; the copy holds %d of %d, in %d bytes; notes %q",
		len(known), sumRecords(rep), totalLen(source), rep.Bytes, strings.Join(rep.Notes, "; "))
}

// bkReady reports whether every partition has three segments and a commit
// of the group member.
func bkReady(t *testing.T, l *Log, k *bkCommitter) bool {
	info, err := l.DescribeTopic(bkTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range info.Partitions {
		if pi.Segments < 3 {
			return false
		}
	}
	return len(k.snapshot()) == bkParts
}

func sumRecords(rep BackupReport) (n int64) {
	for _, pb := range rep.Partitions {
		n += pb.Records
	}
	return n
}

func totalLen(m map[int][]Record) (n int) {
	for _, recs := range m {
		n += len(recs)
	}
	return n
}

func init() { childMains["backup-killed"] = backupKilledMain }

// backupKilledMain backs up $RUNNEL_BK_DIR into $RUNNEL_BK_DEST, saying
// "copying" once its second segment is copied and then waiting, to be
// killed there.
func backupKilledMain() int {
	l, err := Open(os.Getenv("RUNNEL_BK_DIR"), mpOptions(Options{RetentionInterval: -1}))
	if err != nil {
		return mpFail("backup", err)
	}
	segments := 0
	backupHook = func(stage, _ string, _ int, _ int64) {
		if stage == "segment" {
			if segments++; segments == 3 {
				fmt.Println("copying")
				time.Sleep(time.Hour) // until killed
			}
		}
	}
	_, err = l.Backup(context.Background(), os.Getenv("RUNNEL_BK_DEST"), nil)
	return mpFail("backup", fmt.Errorf("Backup returned (%v); it was to be killed first", err))
}

// TestBackupKilled kills (SIGKILL) a backup process part way through its
// copy: what it leaves is only its .incomplete-* directory, never a
// directory under the name asked for that holds a log, and a backup into
// that name afterwards succeeds.
func TestBackupKilled(t *testing.T) {
	src := t.TempDir()
	l := bkSource(t, src, 400)
	want := bkRecords(t, l, "orders")
	for _, mode := range []string{"new directory", "empty directory"} {
		t.Run(mode, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "copy")
			if mode == "empty directory" {
				os.Mkdir(dest, 0o755)
			}
			cmd := mpChild("backup-killed", "RUNNEL_BK_DIR="+src, "RUNNEL_BK_DEST="+dest)
			_, stdout := startPiped(t, cmd)
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "copying\n" {
				t.Fatalf("the backup process said %q, %v", line, err)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the backup process ended by %v, not by SIGKILL", err)
			}

			// What the killed backup left: its build directory, which holds
			// segments copied but no runnel.format, and nothing under dest
			// but that.
			where := base
			if mode == "empty directory" {
				where = dest
				if _, err := os.Stat(filepath.Join(dest, formatFileName)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s after the kill: %v; want none", formatFileName, err)
				}
			} else if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("destination after the kill: %v; want none", err)
			}
			left := leftovers(t, where)
			if len(left) != 1 {
				t.Fatalf("after the kill, %s holds %v; want one directory the backup was built in", where, left)
			}
			build := filepath.Join(where, left[0])
			if _, err := os.Stat(filepath.Join(build, formatFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the killed backup's %s holds %s (%v): it would look like a log", left[0], formatFileName, err)
			}
			if segs, _ := filepath.Glob(filepath.Join(build, "topics", "orders", "*", "*"+logExt)); len(segs) == 0 {
				t.Errorf("the killed backup's %s holds no segment: it was killed before copying", left[0])
			}

			// Another backup under the name asked for.
			if mode == "new directory" {
				if err := os.RemoveAll(build); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Backup(context.Background(), dest, nil); err != nil {
				t.Fatal(err)
			}
			if got := leftovers(t, where); len(got) != 0 {
				t.Errorf("after the second backup, %s holds %v", where, got)
			}
			if diff := diffLarge(want, bkRecords(t, openCopy(t, dest), "orders")); diff != "" {
				t.Errorf("copy (-want +got):\n%s", diff)
			}
		})
	}
}
