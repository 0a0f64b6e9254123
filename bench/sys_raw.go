package main

import (
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// raw is the limit: the same value bytes appended to one file with no
// format at all. Concurrent appenders are group-committed the simplest
// way: whoever finds no write in flight writes everything queued with one
// pwrite (and one fdatasync when durable) and wakes the rest.

func rawSystem() *system {
	return &system{
		Name:     rawName,
		Open:     openRaw,
		Buffered: true,
		Raw:      true,
		Note:     "values concatenated; one pwrite per group of queued appends, + fdatasync when durable",
	}
}

type rawStore struct {
	f       *os.File
	durable bool
	size    int

	mu      sync.Mutex
	done    sync.Cond
	fd      int
	buf     []byte // queued, not yet written
	dones   []func(error)
	spare   []byte
	queued  uint64 // appends queued so far
	written uint64 // appends written (and synced) so far
	busy    bool   // a leader is writing
	off     int64
	err     error
}

func openRaw(cfg config) (store, error) {
	f, err := os.OpenFile(filepath.Join(cfg.Dir, "raw.dat"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &rawStore{f: f, fd: int(f.Fd()), durable: cfg.Durable, size: cfg.ValueSize, off: fi.Size()}
	s.done.L = &s.mu
	return s, nil
}

func (s *rawStore) Append(v []byte) error { return s.append(v) }

// rawAsyncLimit bounds what appendAsync queues, as runnel's MaxBatchBytes
// bounds its pending batch.
const rawAsyncLimit = 1 << 20

// AsyncAppender's appends queue v; a flusher goroutine writes whatever is
// queued with one pwrite (+ fdatasync) and then acknowledges it, in order.
func (s *rawStore) AsyncAppender(done func(error)) func(v []byte) {
	return func(v []byte) { s.appendAsync(v, done) }
}

func (s *rawStore) appendAsync(v []byte, done func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) >= rawAsyncLimit && s.err == nil {
		s.done.Wait()
	}
	if s.err != nil {
		done(s.err)
		return
	}
	s.buf = append(s.buf, v...)
	s.dones = append(s.dones, done)
	if !s.busy {
		s.busy = true
		go s.flusher()
	}
}

func (s *rawStore) flusher() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) > 0 {
		buf, dones, off := s.buf, s.dones, s.off
		s.buf, s.spare, s.dones = s.spare[:0], nil, nil
		s.mu.Unlock()
		err := writeAll(s.fd, buf, off, s.durable)
		for _, d := range dones {
			d(err)
		}
		s.mu.Lock()
		s.off += int64(len(buf))
		s.spare = buf
		s.err = cmpErr(s.err, err)
		s.done.Broadcast()
	}
	s.busy = false
	s.done.Broadcast()
}

// Flush waits until the flusher has written everything queued.
func (s *rawStore) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for (s.busy || len(s.buf) > 0) && s.err == nil {
		s.done.Wait()
	}
	return s.err
}

func (s *rawStore) AppendBatch(vs [][]byte) error {
	for _, v := range vs {
		s.mu.Lock()
		s.buf = append(s.buf, v...)
		s.mu.Unlock()
	}
	return s.append(nil)
}

func (s *rawStore) append(v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, v...)
	s.queued++
	me := s.queued
	for s.written < me && s.err == nil {
		if s.busy {
			s.done.Wait()
			continue
		}
		// Lead: write everything queued up to now.
		s.busy = true
		buf, upto, off := s.buf, s.queued, s.off
		s.buf, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		err := writeAll(s.fd, buf, off, s.durable)
		s.mu.Lock()
		s.busy = false
		s.off += int64(len(buf))
		s.spare = buf
		s.written = upto
		if err != nil {
			s.err = err
		}
		s.done.Broadcast()
	}
	return s.err
}

func writeAll(fd int, b []byte, off int64, durable bool) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	if durable {
		return unix.Fdatasync(fd)
	}
	return nil
}

func (s *rawStore) Scan(fn func(v []byte)) error {
	buf := make([]byte, (1<<20)/s.size*s.size)
	var off int64
	for {
		n, err := s.f.ReadAt(buf, off)
		n -= n % s.size
		for i := 0; i < n; i += s.size {
			fn(buf[i : i+s.size])
		}
		off += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *rawStore) Close() error { return s.f.Close() }
