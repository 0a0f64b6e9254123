package main

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3"
)

// SQLite as the queue: WAL journal, a table with an AUTOINCREMENT key, one
// INSERT per append in autocommit. Durable is synchronous=FULL (the WAL is
// fsynced at every commit); Buffered is synchronous=NORMAL, SQLite's
// recommended setting for WAL mode (safe from an application crash, synced
// only at checkpoints). One connection per process (SQLite runs one writer
// at a time anyway; more connections only add busy retries), and a 10 s
// busy_timeout for the other processes of the multi-process workload.

func sqliteSystem() *system {
	return &system{
		Name:         "sqlite",
		Open:         openSQLite,
		Buffered:     true,
		MultiProcess: true,
		Note:         "WAL mode, AUTOINCREMENT table, INSERT per append; Durable: synchronous=FULL; Buffered: synchronous=NORMAL; 1 connection per process, busy_timeout=10s",
	}
}

type sqliteStore struct {
	db     *sql.DB
	insert *sql.Stmt
}

func openSQLite(cfg config) (store, error) {
	sync := "NORMAL"
	if cfg.Durable {
		sync = "FULL"
	}
	dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_synchronous=%s&_busy_timeout=10000&_txlock=immediate",
		filepath.Join(cfg.Dir, "queue.db"), sync)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if cfg.Create {
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY AUTOINCREMENT, v BLOB NOT NULL)`); err != nil {
			db.Close()
			return nil, err
		}
	}
	insert, err := db.Prepare(`INSERT INTO q (v) VALUES (?)`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &sqliteStore{db: db, insert: insert}, nil
}

func (s *sqliteStore) Append(v []byte) error {
	_, err := s.insert.Exec(v)
	return err
}

func (s *sqliteStore) AppendBatch(vs [][]byte) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	st := tx.Stmt(s.insert)
	for _, v := range vs {
		if _, err := st.Exec(v); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteStore) Scan(fn func(v []byte)) error {
	rows, err := s.db.Query(`SELECT v FROM q ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var v sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return err
		}
		fn(v)
	}
	return rows.Err()
}

func (s *sqliteStore) Close() error {
	return errors.Join(s.insert.Close(), s.db.Close())
}
