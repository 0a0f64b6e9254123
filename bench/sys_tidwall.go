package main

import (
	"errors"
	"sync"

	"github.com/tidwall/wal"
)

// tidwall/wal with its defaults (binary format, 20 MB segments); durable
// means NoSync=false, which fsyncs after every Write. Its entries carry a
// caller-chosen index that must be the last plus one, so concurrent
// writers take a mutex around "next index, Write" — which also serializes
// their fsyncs: the library has no group commit.

func tidwallSystem() *system {
	return &system{
		Name:     "tidwall/wal",
		Open:     openTidwall,
		Buffered: true,
		Note:     "defaults; Durable: NoSync=false (fsync per Write); Buffered: NoSync=true; a mutex orders concurrent writers",
	}
}

type tidwallStore struct {
	mu   sync.Mutex
	l    *wal.Log
	next uint64
}

func openTidwall(cfg config) (store, error) {
	l, err := wal.Open(cfg.Dir, &wal.Options{NoSync: !cfg.Durable})
	if err != nil {
		return nil, err
	}
	last, err := l.LastIndex()
	if err != nil {
		l.Close()
		return nil, err
	}
	return &tidwallStore{l: l, next: last + 1}, nil
}

func (s *tidwallStore) Append(v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.l.Write(s.next, v); err != nil {
		return err
	}
	s.next++
	return nil
}

func (s *tidwallStore) AppendBatch(vs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b wal.Batch
	for i, v := range vs {
		b.Write(s.next+uint64(i), v)
	}
	if err := s.l.WriteBatch(&b); err != nil {
		return err
	}
	s.next += uint64(len(vs))
	return nil
}

func (s *tidwallStore) Scan(fn func(v []byte)) error {
	first, err := s.l.FirstIndex()
	if err != nil {
		return err
	}
	if first == 0 {
		return nil // empty
	}
	for i := first; i < s.next; i++ {
		v, err := s.l.Read(i)
		if err != nil {
			return err
		}
		fn(v)
	}
	return nil
}

func (s *tidwallStore) Close() error {
	err := s.l.Close()
	if errors.Is(err, wal.ErrClosed) {
		return nil
	}
	return err
}
