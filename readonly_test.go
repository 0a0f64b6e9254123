package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Reading needs only read permission: a consumer without a group, Verify
// and Dump work on a log this process may only read (another user's, a
// read-only mount, a restored backup), and what needs writing fails with
// the permission error, not as damage.

const roRecords = 300

func init() { childMains["readonly-checks"] = readOnlyChildMain }

// roLog builds the log the read-only tests read: topic "t" with records in
// partition 0 only (partition 1 has never been written, so it has no
// partition.meta), and group "g" with a committed offset.
func roLog(t *testing.T, dir string) {
	t.Helper()
	l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(t, l, "t", TopicConfig{Partitions: 2})
	p := mustProducer(t, l, "t", &ProducerOptions{Partitioner: ManualPartitioner})
	for i := range roRecords {
		p.SendAsync(Record{Value: mpValue(0, 0, int64(i), i%50)}, nil)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ResetGroupOffsets(context.Background(), "g", "t", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// readOnlyChecks runs, on a log in dir that this process may only read,
// what must work and what must fail with a permission error.
func readOnlyChecks(dir string) error {
	l, err := Open(dir, &Options{RetentionInterval: -1})
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	defer l.Close()
	c, err := l.Consumer("t", nil)
	if err != nil {
		return fmt.Errorf("Consumer: %w", err)
	}
	n := 0
	for {
		recs, err := c.TryPoll()
		if err != nil {
			return fmt.Errorf("TryPoll after %d records: %w", n, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if v, err := mpParse(r.Value); err != nil || v.Seq != int64(n) || r.Offset != int64(n) {
				return fmt.Errorf("record %d: offset %d %q", n, r.Offset, r.Value)
			}
			n++
		}
	}
	// At the end, Poll waits (polling: this process cannot count itself
	// as a sleeper) until its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = c.Poll(ctx)
	cancel()
	c.Close()
	if n != roRecords || !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("read %d records, then Poll: %v", n, err)
	}
	rep, err := l.Verify(context.Background(), "", nil)
	if err != nil || !rep.OK() {
		return fmt.Errorf("Verify: %v, %v", rep.Problems, err)
	}
	frames := 0
	for f, err := range l.Dump("t", 0, 0) {
		if err != nil {
			return fmt.Errorf("Dump: %w", err)
		}
		frames++
		if f.Problem != "" {
			return fmt.Errorf("Dump: %+v", f)
		}
	}
	if frames == 0 {
		return errors.New("Dump found no frame")
	}
	// Writing: the permission error, as such.
	if _, err := l.Consumer("t", &ConsumerOptions{Group: "g"}); !isPermission(err) {
		return fmt.Errorf("group Consumer: %v, want a permission error", err)
	}
	p, err := l.Producer("t", nil)
	if err != nil {
		return fmt.Errorf("Producer: %w", err)
	}
	if _, err := p.Send(context.Background(), Record{Value: []byte("x")}); !isPermission(err) {
		return fmt.Errorf("Send: %v, want a permission error", err)
	}
	return nil
}

func readOnlyChildMain() int {
	if err := readOnlyChecks(os.Getenv("RUNNEL_RO_DIR")); err != nil {
		return mpFail("readonly-checks", err)
	}
	return 0
}

func TestReadOnlyDirectory(t *testing.T) {
	t.Run("chmod", func(t *testing.T) {
		if os.Geteuid() != 0 {
			dir := t.TempDir()
			roLog(t, dir)
			chmodTree(t, dir, 0o444, 0o555)
			t.Cleanup(func() { chmodTree(t, dir, 0o644, 0o755) })
			if err := readOnlyChecks(dir); err != nil {
				t.Fatal(err)
			}
			return
		}
		// Root may write anything: another user reads the log, in a
		// child process (a copy of this test binary they may run).
		base, err := os.MkdirTemp("", "runnel-readonly-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
		dir := filepath.Join(base, "log")
		roLog(t, dir)
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "runnel.test")
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		chmodTree(t, base, 0o644, 0o755)
		os.Chmod(bin, 0o755)
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=readonly-checks", "RUNNEL_RO_DIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("as another user: %v\n%s", err, out)
		}
	})
	t.Run("read-only mount", func(t *testing.T) {
		dir := t.TempDir()
		roLog(t, dir)
		mnt := readOnlyMount(t, dir)
		if err := readOnlyChecks(mnt); err != nil {
			t.Fatal(err)
		}
		if err := unix.Access(mnt, unix.W_OK); !errors.Is(err, unix.EROFS) {
			t.Fatalf("the mount is writable: %v", err)
		}

		// A reader of the read-only mount sees appends made through a
		// writable path, by polling: partition 0 has a partition.meta to
		// watch, partition 1 gets its first one only now.
		ro := openTest(t, mnt, &Options{RetentionInterval: -1})
		c := mustConsumer(t, ro, "t", &ConsumerOptions{Start: Latest})
		rw := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
		p := mustProducer(t, rw, "t", &ProducerOptions{Partitioner: ManualPartitioner})
		for part := range 2 {
			done := make(chan []Record, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				recs, err := c.Poll(ctx)
				if err != nil {
					t.Errorf("Poll on the read-only mount: %v", err)
				}
				done <- recs
			}()
			if _, err := p.Send(context.Background(), Record{Partition: part, Value: []byte("new")}); err != nil {
				t.Fatal(err)
			}
			if recs := <-done; len(recs) != 1 || recs[0].Partition != part || string(recs[0].Value) != "new" {
				t.Fatalf("partition %d: the reader of the read-only mount got %+v", part, recs)
			}
		}
	})
}

// chmodTree sets the modes of every file and directory under root.
func chmodTree(t *testing.T, root string, file, dir fs.FileMode) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, dir)
		}
		return os.Chmod(path, file)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readOnlyMount mounts dir read-only (a bind mount) and returns where; the
// test is skipped where that cannot be done.
func readOnlyMount(t *testing.T, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a read-only bind mount needs root; this case is not run")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "--bind", dir, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount --bind: %v: %s (this case is not run)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	return mnt
}
