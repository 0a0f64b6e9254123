package main

import (
	"errors"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// hashicorp/raft-wal with its defaults (64 MiB segments, bbolt meta store).
// It fsyncs every StoreLogs and has no option not to; the buffered rows
// give it a file system whose Sync does nothing, through its own
// WithSegmentFiler hook. Entries are raft.Logs with consecutive indexes, so
// concurrent writers take a mutex, as with tidwall/wal.

func raftWALSystem() *system {
	return &system{
		Name:     "raft-wal",
		Open:     openRaftWAL,
		Buffered: true,
		Note:     "defaults; Durable: fsync per StoreLogs (built in); Buffered: segment VFS with a no-op Sync; a mutex orders concurrent writers",
	}
}

type raftWALStore struct {
	mu   sync.Mutex
	w    *raftwal.WAL
	meta *metadb.BoltMetaDB
	next uint64
}

func openRaftWAL(cfg config) (store, error) {
	var vfs types.VFS = fs.New()
	if !cfg.Durable {
		vfs = noSyncVFS{vfs}
	}
	// WAL.Close leaves its meta store open (and flock'ed), so the store
	// keeps it and closes it too.
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(cfg.Dir,
		raftwal.WithMetaStore(meta),
		raftwal.WithLogger(hclog.NewNullLogger()),
		raftwal.WithSegmentFiler(segment.NewFiler(cfg.Dir, vfs)))
	if err != nil {
		return nil, err
	}
	last, err := w.LastIndex()
	if err != nil {
		w.Close()
		return nil, err
	}
	return &raftWALStore{w: w, meta: meta, next: last + 1}, nil
}

func (s *raftWALStore) Append(v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.StoreLog(&raft.Log{Index: s.next, Term: 1, Type: raft.LogCommand, Data: v}); err != nil {
		return err
	}
	s.next++
	return nil
}

func (s *raftWALStore) AppendBatch(vs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := make([]*raft.Log, len(vs))
	for i, v := range vs {
		logs[i] = &raft.Log{Index: s.next + uint64(i), Term: 1, Type: raft.LogCommand, Data: v}
	}
	if err := s.w.StoreLogs(logs); err != nil {
		return err
	}
	s.next += uint64(len(vs))
	return nil
}

func (s *raftWALStore) Scan(fn func(v []byte)) error {
	first, err := s.w.FirstIndex()
	if err != nil || first == 0 {
		return err
	}
	var l raft.Log
	for i := first; i < s.next; i++ {
		if err := s.w.GetLog(i, &l); err != nil {
			return err
		}
		fn(l.Data)
	}
	return nil
}

func (s *raftWALStore) Close() error { return errors.Join(s.w.Close(), s.meta.Close()) }

// noSyncVFS is raft-wal's own file system with Sync made a no-op.
type noSyncVFS struct{ types.VFS }

func (v noSyncVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (v noSyncVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := v.VFS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ types.WritableFile }

func (noSyncFile) Sync() error { return nil }
