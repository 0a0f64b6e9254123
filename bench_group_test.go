package runnel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkGroupFailover measures how long a group member's partitions
// stay without an owner after the member is killed with SIGKILL: from the
// kill to the survivor's OnAssigned for the last of them (which runs after
// the survivor has locked each partition, read its commit and positioned
// its reader). One op is one trial: a victim process joins, the group
// balances 6/6, the victim is killed at a random moment. Run it with
// -benchtime=20x for 20 trials; it reports the median and the maximum.
func BenchmarkGroupFailover(b *testing.B) {
	dir := b.TempDir()
	l := openTest(b, dir, &Options{Durability: Buffered})
	const nparts = 12
	mustCreate(b, l, "events", TopicConfig{Partitions: nparts})
	quiet := "RUNNEL_GM_QUIET=1"
	survivor := startMPMember(b, dir, "events", "g", "survivor", quiet)
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		victim := startMPMember(b, dir, "events", "g", "victim", quiet)
		deadline := time.Now().Add(20 * time.Second)
		for !mpBalanced(nparts, survivor, victim) {
			if time.Now().After(deadline) {
				b.Fatalf("trial %d: no 6/6 balance: survivor %v, victim %v", i, survivor.ownedNow(), victim.ownedNow())
			}
			time.Sleep(time.Millisecond)
		}
		lost := victim.ownedNow()
		// Deaths come at any moment of the survivor's check period; the
		// balance just seen came right after a check.
		time.Sleep(rand.N(2 * defaultGroupCheckInterval))
		b.StartTimer()
		killed := time.Now()
		victim.cmd.Process.Kill()
		var last time.Time
		for _, p := range lost {
			for {
				at, ok := survivor.firstAssigned(p, killed)
				if ok {
					if at.After(last) {
						last = at
					}
					break
				}
				if time.Since(killed) > 20*time.Second {
					b.Fatalf("trial %d: partition %d not taken over", i, p)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		b.StopTimer()
		<-victim.exited
		samples = append(samples, last.Sub(killed))
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2])/1e6, "ms-median")
	b.ReportMetric(float64(samples[len(samples)-1])/1e6, "ms-max")
	b.Logf("%d trials, failover times: %v", len(samples), samples)
}

// BenchmarkGroupCommit measures one commit of one partition's offset:
// durable (pwrite + fdatasync of the offsets file) next to a bare pwrite +
// fdatasync of a small file in the same directory, timed in the same loop
// (x-fdatasync is the ratio), and buffered (pwrite only).
func BenchmarkGroupCommit(b *testing.B) {
	for _, mode := range []Durability{Durable, Buffered} {
		b.Run(mode.String(), func(b *testing.B) {
			dir := b.TempDir()
			l := openTest(b, dir, &Options{Durability: mode})
			mustCreate(b, l, "t", TopicConfig{Partitions: 1})
			c, err := l.Consumer("t", &ConsumerOptions{Group: "g", DisableAutoCommit: true})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.TryPoll(); err != nil || len(c.Partitions()) != 1 {
				b.Fatalf("member owns %v: %v", c.Partitions(), err)
			}
			ctx := context.Background()
			offsets := map[int]int64{0: 0}

			var raw *os.File
			var rawTotal time.Duration
			if mode == Durable {
				raw, err = os.Create(filepath.Join(dir, "raw"))
				if err != nil {
					b.Fatal(err)
				}
				defer raw.Close()
				raw.Write(make([]byte, 4096))
				raw.Sync()
			}
			buf := make([]byte, slotSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				offsets[0] = int64(i + 1)
				if err := c.CommitOffsets(ctx, offsets); err != nil {
					b.Fatal(err)
				}
				if raw != nil {
					b.StopTimer()
					start := time.Now()
					buf[0] = byte(i)
					if _, err := raw.WriteAt(buf, 64); err != nil {
						b.Fatal(err)
					}
					if err := fdatasync(int(raw.Fd())); err != nil {
						b.Fatal(err)
					}
					rawTotal += time.Since(start)
					b.StartTimer()
				}
			}
			if raw != nil {
				commit := float64(b.Elapsed()) / float64(b.N)
				fsync := float64(rawTotal) / float64(b.N)
				b.ReportMetric(fsync, "fdatasync-ns")
				b.ReportMetric(commit/fsync, "x-fdatasync")
			}
		})
	}
}

// BenchmarkIdleGroupMembers measures what idle members of one group
// cost: each checks the group every GroupCheckInterval (10 ms), for a
// member that died, with nothing to read. The members share this process
// (each with its own offsets-file descriptor, as in separate processes);
// one op is one check interval, and cores is the process's CPU time over
// the wall time, rusage's user and system.
func BenchmarkIdleGroupMembers(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			l := openTest(b, b.TempDir(), &Options{Durability: Buffered})
			mustCreate(b, l, "jobs", TopicConfig{Partitions: 64})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var owned atomic.Int64
			for i := range n {
				c, err := l.Consumer("jobs", &ConsumerOptions{Group: "workers", MemberName: fmt.Sprint(i),
					OnAssigned: func(_ *Consumer, ps []int) { owned.Add(int64(len(ps))) },
					OnRevoked:  func(_ *Consumer, ps []int) { owned.Add(-int64(len(ps))) },
				})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					defer c.Close()
					for ctx.Err() == nil {
						c.Poll(ctx)
					}
				})
			}
			defer wg.Wait()
			defer cancel()
			for owned.Load() != 64 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // settled
			cpu0, began := processCPU(b), time.Now()
			b.ResetTimer()
			for range b.N {
				time.Sleep(defaultGroupCheckInterval)
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Since(began)), "cores")
		})
	}
}

// processCPU is the CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
