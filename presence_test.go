package runnel

import (
	"context"
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
