package kafka

import (
	"context"
	"encoding/base64"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzStateFiles writes the fuzzer's bytes as the server's kafka/cluster.id
// and kafka/producer-ids, and loads them as a starting server does. Whatever
// the bytes: nothing panics; the cluster id loaded is the file's, 16 bytes
// of URL-safe base64, or the error names the file and quotes at most a
// bounded piece of it; a producer id handed out is the file's counter (0
// for an empty file), and the next server's is a block after it, or the
// error names the file.
func FuzzStateFiles(f *testing.F) {
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAA\n"), []byte("00000000000000001000\n"))
	f.Add([]byte("qL1Xc1b3Tq2Dzq0QX9cOkw"), []byte(""))
	f.Add([]byte(""), []byte("-5"))
	f.Add([]byte("qL1Xc1b3Tq2Dzq0QX9cOk="), []byte("09223372036854775806\n"))
	f.Add([]byte(strings.Repeat("A", 200)), []byte(strings.Repeat("9", 40)))
	f.Add([]byte(" \t qL1Xc1b3Tq2Dzq0QX9cOkw \n\n"), []byte(" 12 \n junk"))
	f.Fuzz(func(t *testing.T, cid, pids []byte) {
		dir := t.TempDir()
		sdir := filepath.Join(dir, stateDir)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			t.Fatal(err)
		}
		cpath, ppath := filepath.Join(sdir, clusterIDFile), filepath.Join(sdir, pidFile)
		if err := os.WriteFile(cpath, cid, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ppath, pids, 0o644); err != nil {
			t.Fatal(err)
		}

		id, err := loadClusterID(dir)
		if err != nil {
			if !strings.Contains(err.Error(), cpath) || len(err.Error()) > len(cpath)+512 {
				t.Fatalf("loadClusterID: %.300q, want a short error naming %s", err, cpath)
			}
		} else if raw, derr := base64.RawURLEncoding.DecodeString(id); derr != nil || len(raw) != 16 || id != strings.TrimSpace(string(cid)) {
			t.Fatalf("loadClusterID: %q from a file holding %q", id, cid)
		}

		counter, valid := pidCounter(pids)
		pid, err := newPIDAllocator(dir).allocate(context.Background())
		if err != nil {
			if !strings.Contains(err.Error(), ppath) || len(err.Error()) > len(ppath)+512 {
				t.Fatalf("allocate: %.300q, want a short error naming %s", err, ppath)
			}
			if valid {
				t.Fatalf("allocate: %v, from a file holding the counter %d", err, counter)
			}
			return
		}
		if !valid || pid != counter {
			t.Fatalf("allocate: id %d from a file holding %q", pid, pids)
		}
		again, err := newPIDAllocator(dir).allocate(context.Background())
		if err != nil || again != pid+pidBlock {
			after, _ := os.ReadFile(ppath)
			t.Fatalf("allocate: id %d from a file holding %q, then %d, %v (it holds %q)", pid, pids, again, err, after)
		}
	})
}

// pidCounter is what a producer-ids file holds, worked out apart from
// the allocator: a counter with a block of ids after it, in decimal
// between blanks, no longer than maxPIDFile bytes; none (0) in a blank
// file.
func pidCounter(file []byte) (int64, bool) {
	text := strings.TrimSpace(string(file))
	if len(file) > maxPIDFile {
		return 0, false
	}
	if text == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil && n >= 0 && n <= math.MaxInt64-pidBlock
}
