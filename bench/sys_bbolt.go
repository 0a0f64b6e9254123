package main

import (
	"encoding/binary"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// bbolt as a queue: one bucket, keys are the bucket's NextSequence as
// big-endian uint64, so a cursor walks them in append order. One append is
// one read-write transaction (db.Update); with several durable writers
// they go through db.Batch, bbolt's documented way to share one commit,
// with MaxBatchSize set to the number of writers so a full batch commits
// without waiting for MaxBatchDelay. Durable is bbolt's default (fdatasync
// at commit); Buffered sets NoSync.

var bboltBucket = []byte("q")

func bboltSystem() *system {
	return &system{
		Name:     "bbolt",
		Open:     openBbolt,
		Buffered: true,
		Note:     "Update per append (Batch with MaxBatchSize=writers for durable concurrent writers); Buffered: NoSync=true",
	}
}

type bboltStore struct {
	db    *bolt.DB
	batch bool
}

func openBbolt(cfg config) (store, error) {
	db, err := bolt.Open(filepath.Join(cfg.Dir, "queue.db"), 0o644, nil)
	if err != nil {
		return nil, err
	}
	db.NoSync = !cfg.Durable
	if cfg.Writers > 1 {
		db.MaxBatchSize = cfg.Writers
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bboltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &bboltStore{db: db, batch: cfg.Durable && cfg.Writers > 1}, nil
}

func bboltPut(tx *bolt.Tx, v []byte) error {
	b := tx.Bucket(bboltBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], v)
}

func (s *bboltStore) Append(v []byte) error {
	put := func(tx *bolt.Tx) error { return bboltPut(tx, v) }
	if s.batch {
		return s.db.Batch(put)
	}
	return s.db.Update(put)
}

func (s *bboltStore) AppendBatch(vs [][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, v := range vs {
			if err := bboltPut(tx, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *bboltStore) Scan(fn func(v []byte)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bboltBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fn(v)
		}
		return nil
	})
}

func (s *bboltStore) Close() error { return s.db.Close() }
