package main

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
)

// runnel: one topic with one partition, so that its single ordered log is
// compared with the other systems' single logs. Every append is a Send
// (acknowledged one at a time); concurrent writers share one Producer, so
// group commit and natural batching do their work.

const runnelTopic = "bench"

func runnelSystem(backend string) *system {
	return &system{
		Name:         "runnel/" + backend,
		Open:         func(cfg config) (store, error) { return openRunnel(cfg, backend) },
		OpenTail:     func(cfg config) (tailer, func() error, error) { return openRunnelTail(cfg, backend) },
		Buffered:     true,
		MultiProcess: true,
		Note:         "Durable: fdatasync per frame, group commit; Buffered: committed in the page cache",
	}
}

type runnelStore struct {
	l *runnel.Log
	p *runnel.Producer
}

func runnelOptions(cfg config, backend string) *runnel.Options {
	d := runnel.Buffered
	if cfg.Durable {
		d = runnel.Durable
	}
	return &runnel.Options{Durability: d, Backend: backend}
}

func openRunnelLog(cfg config, backend string) (*runnel.Log, error) {
	return openRunnelLogWith(cfg, runnelOptions(cfg, backend))
}

// openRunnelLogWith opens the log with o, creating the topic if cfg says.
func openRunnelLogWith(cfg config, o *runnel.Options) (*runnel.Log, error) {
	l, err := runnel.Open(cfg.Dir, o)
	if err != nil {
		return nil, err
	}
	if cfg.Create {
		if err := l.CreateTopic(runnelTopic, runnel.TopicConfig{Partitions: 1}); err != nil && !errors.Is(err, runnel.ErrTopicExists) {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func openRunnel(cfg config, backend string) (store, error) {
	l, err := openRunnelLog(cfg, backend)
	if err != nil {
		return nil, err
	}
	p, err := l.Producer(runnelTopic, nil)
	if err != nil {
		l.Close()
		return nil, err
	}
	return &runnelStore{l: l, p: p}, nil
}

func (s *runnelStore) Append(v []byte) error {
	_, err := s.p.Send(context.Background(), runnel.Record{Value: v})
	return err
}

func (s *runnelStore) AsyncAppender(done func(error)) func(v []byte) {
	sent := func(_ runnel.Position, err error) { done(err) }
	return func(v []byte) { s.p.SendAsync(runnel.Record{Value: v}, sent) }
}

func (s *runnelStore) Flush() error { return s.p.Flush(context.Background()) }

func (s *runnelStore) AppendBatch(vs [][]byte) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	wg.Add(len(vs))
	for _, v := range vs {
		s.p.SendAsync(runnel.Record{Value: v}, func(_ runnel.Position, err error) {
			if err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	if err := s.p.Flush(context.Background()); err != nil {
		return err
	}
	wg.Wait()
	return first
}

func (s *runnelStore) Scan(fn func(v []byte)) error {
	c, err := s.l.Consumer(runnelTopic, &runnel.ConsumerOptions{Start: runnel.Earliest})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		recs, err := c.TryPoll()
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			fn(r.Value)
		}
	}
}

func (s *runnelStore) Close() error {
	return errors.Join(s.p.Close(), s.l.Close())
}

type runnelTail struct {
	c *runnel.Consumer
}

func openRunnelTail(cfg config, backend string) (tailer, func() error, error) {
	l, err := openRunnelLog(cfg, backend)
	if err != nil {
		return nil, nil, err
	}
	c, err := l.Consumer(runnelTopic, &runnel.ConsumerOptions{Start: runnel.Earliest})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return runnelTail{c}, func() error { return errors.Join(c.Close(), l.Close()) }, nil
}

// tailPollSlice bounds one blocking Poll, so that a missed cross-process
// wake-up costs at most this much latency instead of hanging the run.
const tailPollSlice = 100 * time.Millisecond

func (t runnelTail) Tail(ctx context.Context, fn func(v []byte) bool) error {
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, tailPollSlice)
		recs, err := t.c.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		for _, r := range recs {
			if !fn(r.Value) {
				return nil
			}
		}
	}
	return ctx.Err()
}
