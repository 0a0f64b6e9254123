package runnel

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkBackup measures Backup of a log of four partitions (64 MiB of
// segments), and reports "x-plain": its rate divided by the rate of a
// plain synced copy of the same directory (every file copied the same way,
// by copy_file_range where there is one, each fdatasync'd, each directory
// synced: what "cp -a" followed by "sync" costs), measured in the same
// iteration right before it, so that the machine's noise hits both alike.
// ns/op is the time of both.
// What Backup adds is the check of every copied frame, the index rebuilds
// and the fresh metadata.
//
//	go test -run '^$' -bench Backup -benchtime 5x .
func BenchmarkBackup(b *testing.B) {
	src := b.TempDir()
	l := openTest(b, src, &Options{Durability: Buffered, RetentionInterval: -1})
	mustCreate(b, l, "b", TopicConfig{Partitions: 4, SegmentBytes: 4 << 20})
	value := make([]byte, 1000)
	batch := make([]Record, 256)
	for i := range batch {
		batch[i] = Record{Value: value}
	}
	p := mustProducer(b, l, "b", nil)
	for part := range 4 {
		for range (16 << 20) / (len(value) * len(batch)) {
			if _, err := p.SendBatch(context.Background(), part, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	var size int64
	filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
			}
		}
		return err
	})
	b.ResetTimer()
	var plain, backup time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dests := b.TempDir()
		b.StartTimer()
		start := time.Now()
		plainCopy(b, src, filepath.Join(dests, "plain"))
		plain += time.Since(start)
		start = time.Now()
		if _, err := l.Backup(context.Background(), filepath.Join(dests, "backup"), nil); err != nil {
			b.Fatal(err)
		}
		backup += time.Since(start)
		b.StopTimer()
		os.RemoveAll(dests)
		b.StartTimer()
	}
	b.ReportMetric(float64(size)*float64(b.N)/backup.Seconds()/(1<<20), "MiB/s")
	b.ReportMetric(plain.Seconds()/backup.Seconds(), "x-plain")
}

// plainCopy copies the tree src to dst as a careful cp would: every file
// by (*os.File).ReadFrom, fdatasync'd, then every directory synced.
func plainCopy(b *testing.B, src, dst string) {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := out.ReadFrom(in); err != nil {
			out.Close()
			return err
		}
		if err := fdatasync(int(out.Fd())); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err == nil {
		err = syncTree(dst)
	}
	if err != nil {
		b.Fatal(err)
	}
}
