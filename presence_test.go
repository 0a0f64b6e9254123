package runnel

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startSleeper starts a consumer process that sleeps in Poll on topic t
// of dir (which must be empty) until one record comes, and waits until it
// is counted asleep in m.
func startSleeper(t *testing.T, dir string, m *metaMap) *exec.Cmd {
	t.Helper()
	before := m.sleeping.count().Load()
	cmd := mpChild("mp-wake", "RUNNEL_MP_DIR="+dir, "RUNNEL_MP_TOPIC=t", "RUNNEL_MP_N=1")
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for m.sleeping.count().Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the consumer process never went to sleep")
		}
		time.Sleep(100 * time.Microsecond)
	}
	return cmd
}

func slotsMarked(m *metaMap, p *presence) int {
	n := 0
	for i := range p.slots {
		if m.u32(p.slotOff(i)).Load() != 0 {
			n++
		}
	}
	return n
}

// TestSleeperCountHeals: a consumer killed by SIGKILL while asleep leaves
// the sleeping-reader count raised; the count heals, without ever taking
// a live sleeper out. (A new sleeper that claims the dead one's slot heals
// it too, which is why the live sleeper here starts first.)
func TestSleeperCountHeals(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	pdir := filepath.Join(dir, "topics", "t", "0")
	m, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.close() }()

	live := startSleeper(t, dir, m)
	dead := startSleeper(t, dir, m)
	dead.Process.Kill()
	dead.Wait()
	if n := m.sleeping.count().Load(); n != 2 {
		t.Fatalf("after SIGKILL the count is %d; this test expects the dead sleeper still counted", n)
	}
	healer, err := openLockFile(filepath.Join(pdir, metaFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer healer.Close()
	m.sleeping.healNow(healer)
	if n, marked := m.sleeping.count().Load(), slotsMarked(m, &m.sleeping); n != 1 || marked != 1 {
		t.Fatalf("after healing: count %d, %d slots marked; want the live sleeper alone", n, marked)
	}
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := live.Wait(); err != nil {
		t.Fatalf("live sleeper: %v", err)
	}

	// Without a live sleeper, appends heal the count themselves.
	if err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	m.close()
	if m, err = openMeta(pdir); err != nil {
		t.Fatal(err)
	}
	p = mustProducer(t, l, "t", nil)
	dead = startSleeper(t, dir, m)
	dead.Process.Kill()
	dead.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for m.sleeping.count().Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sleeper count still %d after appending for 30s", m.sleeping.count().Load())
		}
		if _, err := p.Send(context.Background(), Record{Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if marked := slotsMarked(m, &m.sleeping); marked != 0 {
		t.Fatalf("%d sleeper slots still marked", marked)
	}
}

func init() {
	childMains["lock-waiter"] = lockWaiterMain
}

// lockWaiterMain sends one record to topic "t" of $RUNNEL_MP_DIR: with
// the writer lock held elsewhere, it waits for the lock until killed.
func lockWaiterMain() int {
	l, err := Open(os.Getenv("RUNNEL_MP_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("lock waiter", err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("lock waiter", err)
	}
	if _, err := p.Send(context.Background(), Record{Value: []byte("waiter")}); err != nil {
		return mpFail("lock waiter", err)
	}
	return 0
}

// TestLockWaiterCountHeals: a process killed while it waits for the writer
// lock leaves the waiters count raised; the next append heals it, and a
// Log appending alone keeps the lock between appends again.
func TestLockWaiterCountHeals(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	m, err := openMeta(filepath.Join(dir, "topics", "t", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	holder := writerProbe(t, dir, "t")
	if got, err := holder.TryLock(writerLockByte); err != nil || !got {
		t.Fatalf("taking the writer lock: %v, %v", got, err)
	}
	cmd := mpChild("lock-waiter", "RUNNEL_MP_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for m.waiting.count().Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the child never waited for the writer lock")
		}
		time.Sleep(100 * time.Microsecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	holder.Unlock(writerLockByte)
	if n := m.waiting.count().Load(); n != 1 {
		t.Fatalf("after SIGKILL the waiters count is %d; this test expects the dead waiter still counted", n)
	}

	p := mustProducer(t, l, "t", nil)
	for i := range 10 {
		if _, err := p.Send(context.Background(), Record{Value: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.waiting.count().Load(); n != 0 {
		t.Fatalf("waiters count %d after appending", n)
	}
	if marked := slotsMarked(m, &m.waiting); marked != 0 {
		t.Fatalf("%d waiter slots still marked", marked)
	}
	// The first append healed the count, so the lock was kept after it.
	if st := l.Stats(); st.WriterLocks != 1 {
		t.Fatalf("Stats %+v: want one writer lock for the ten appends", st)
	}
}

// TestPresenceHalfEnteredSlotHeals: a slot marked without its share of
// the count (what a holder of the other store order leaves when killed
// between its stores) is healed without the count wrapping around: the
// next sleeper is counted, and an append wakes it.
func TestPresenceHalfEnteredSlotHeals(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, nil)
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	pdir := filepath.Join(dir, "topics", "t", "0")
	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	dead, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	s := dead.sleeping.claim(dead.lf)
	dead.u32(dead.sleeping.slotOff(s.i)).Store(1)
	dead.close()

	m, err := openMeta(pdir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Latest})
	expectWokenSleeper(t, c, p, m)
}

// expectWokenSleeper has consumer c, at the end of its partition, sleep
// in Poll until it is counted asleep in m (its slot is marked, and held),
// then sends a record through p and expects c to get it.
func expectWokenSleeper(t *testing.T, c *Consumer, p *Producer, m *metaMap) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	got := make(chan []Record, 1)
	go func() {
		recs, err := c.Poll(ctx)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("slept until its ctx ended (%w), not woken by the append", ctx.Err())
		}
		if err != nil {
			t.Errorf("Poll: %v", err)
		}
		got <- recs
	}()
	waitFor(t, patience, "the consumer counted asleep", func() bool {
		for i := range m.sleeping.slots {
			off := m.sleeping.slotOff(i)
			if m.u32(off).Load() == 1 {
				if held, err := m.lf.HeldByOther(int64(off)); err == nil && held {
					return true
				}
			}
		}
		return false
	})
	if _, err := p.Send(context.Background(), Record{Value: []byte("wake")}); err != nil {
		t.Fatal(err)
	}
	recs := <-got
	if len(recs) != 1 || string(recs[0].Value) != "wake" {
		t.Fatalf("the sleeping consumer got %d records (%v), want the one sent while it slept", len(recs), recs)
	}
}

func init() {
	childMains["presence-halfway"] = presenceHalfwayMain
}

// presenceHalfwayMain enters the presence count $RUNNEL_PRESENCE
// ("sleeping": a Poll on the empty end of topic "t" of $RUNNEL_MP_DIR;
// "waiting": a Send while the writer lock is held elsewhere), says
// "halfway" between the two stores of entering and waits to be killed.
func presenceHalfwayMain() int {
	which := os.Getenv("RUNNEL_PRESENCE")
	testHookPresence = func(countOff int, _ presenceSlot) {
		if (which == "sleeping" && countOff == metaSleepersOff) || (which == "waiting" && countOff == metaWaitersOff) {
			fmt.Println("halfway")
			time.Sleep(time.Hour)
		}
	}
	l, err := Open(os.Getenv("RUNNEL_MP_DIR"), mpOptions(Options{Durability: Buffered}))
	if err != nil {
		return mpFail("presence", err)
	}
	if which == "sleeping" {
		c, err := l.Consumer("t", &ConsumerOptions{Start: Latest})
		if err != nil {
			return mpFail("presence", err)
		}
		_, err = c.Poll(context.Background())
		return mpFail("presence", fmt.Errorf("Poll returned: %v", err))
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return mpFail("presence", err)
	}
	_, err = p.Send(context.Background(), Record{Value: []byte("halfway")})
	return mpFail("presence", fmt.Errorf("Send returned: %v", err))
}

// killHalfway runs presenceHalfwayMain for which and SIGKILLs it between
// its two stores.
func killHalfway(t *testing.T, dir, which string) {
	t.Helper()
	cmd := mpChild("presence-halfway", "RUNNEL_MP_DIR="+dir, "RUNNEL_PRESENCE="+which)
	_, stdout := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if s := mpExpectLine(t, mpLines(stdout), patience); s != "halfway" {
		t.Fatalf("child said %q", s)
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// TestSleeperKilledBetweenStores: a consumer SIGKILLed between the two
// stores with which it counts itself asleep may leave the count one too
// high, never too low: a live consumer asleep after it is woken by the
// next append.
func TestSleeperKilledBetweenStores(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	m, err := openMeta(filepath.Join(dir, "topics", "t", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	killHalfway(t, dir, "sleeping")
	c := mustConsumer(t, l, "t", &ConsumerOptions{Start: Latest})
	expectWokenSleeper(t, c, mustProducer(t, l, "t", nil), m)
	expectOverCount(t, m, &m.sleeping)
}

// expectOverCount checks that a holder killed between its stores left the
// count of p one too high, and no slot marked.
func expectOverCount(t *testing.T, m *metaMap, p *presence) {
	t.Helper()
	if n, marked := p.count().Load(), slotsMarked(m, p); n != 1 || marked != 0 {
		t.Fatalf("count %d, %d slots marked; want the count one too high for the killed holder, no slot", n, marked)
	}
}

// TestLockWaiterKilledBetweenStores: a process SIGKILLed between the two
// stores with which it announces that it waits for the writer lock may
// leave the waiters count one too high, never too low: a Log that keeps
// appending, and would keep the lock for good with nobody waiting, still
// lets a live waiter have it.
func TestLockWaiterKilledBetweenStores(t *testing.T) {
	stretchHold(t)
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	mustCreate(t, l, "t", TopicConfig{Partitions: 1})
	m, err := openMeta(filepath.Join(dir, "topics", "t", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	holder := writerProbe(t, dir, "t")
	if got, err := holder.TryLock(writerLockByte); err != nil || !got {
		t.Fatalf("taking the writer lock: %v, %v", got, err)
	}
	killHalfway(t, dir, "waiting")
	holder.Unlock(writerLockByte)

	p := mustProducer(t, l, "t", nil)
	if _, err := p.Send(context.Background(), Record{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	waiter := mpChild("lock-waiter", "RUNNEL_MP_DIR="+dir)
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- waiter.Wait() }()
	t.Cleanup(func() { waiter.Process.Kill() })
	deadline := time.Now().Add(patience)
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("lock waiter: %v", err)
			}
			expectOverCount(t, m, &m.waiting)
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("a process waiting for the writer lock did not get it in %v of appends", patience)
		}
		if _, err := p.Send(context.Background(), Record{Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
}
