package regfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A regular file under another holder's lease (as Samba's oplocks and an
// NFS server's delegations take them) opens once the holder lets go, as
// os.OpenFile's open waits for it: O_NONBLOCK made the open fail at once
// with EAGAIN.
func TestOpenLeased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leased")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		t.Skipf("no lease on this file system: %v", err)
	}

	// The holder lets go once the kernel tells it an open is waiting
	// (the lease is then being broken, to F_UNLCK).
	opened := make(chan struct{})
	released := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-opened:
				released <- nil
				return
			default:
			}
			l, err := unix.FcntlInt(holder.Fd(), unix.F_GETLEASE, 0)
			if err != nil {
				released <- err
				return
			}
			if l == unix.F_UNLCK {
				_, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
				released <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		released <- nil
	}()
	f, err := Open(path, os.O_RDWR, 0)
	close(opened)
	if err != nil {
		t.Fatalf("Open of a leased file: %v, want it open once the lease is let go", err)
	}
	f.Close()
	if err := <-released; err != nil {
		t.Fatal(err)
	}
}
