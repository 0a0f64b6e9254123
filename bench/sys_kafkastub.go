package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The franz-go client's ceiling: the client runnel/kafka runs, with the
// same options, against a broker that does as little as a broker can. It
// keeps each produced batch's bytes in memory as they came (no
// decompression, no checks, no disk), acknowledges at once, and answers a
// fetch with a slice of those bytes. Its rows are what the client alone
// can do on this machine with a server beside it that costs next to
// nothing: the physical reference for issue 13's targets, as the bare
// futex is for the latency rows. The read workload's data is loaded
// uncompressed (kafkaStore.AppendBatch), so its fetches carry what
// runnel's server sends: record batches without compression.
//
// The broker is this binary's "serve" child, as runnel's server is. It
// writes its batches to a file in its directory when told to exit and
// reads them back when it starts, so the harness's check of what was
// acknowledged, made by another process, finds them.

const kafkaStubName = "franz-go/stub"

func kafkaStubSystem() *system {
	s := kafkaSystem(kgo.AllISRAcks(), kafkaStubName, "the runnel/kafka client against a broker that keeps batches in memory as they arrive and acknowledges at once: what franz-go alone can do here")
	s.OpenTail = nil
	s.Raw = true
	return s
}

// stubFile holds the stub's batches between its processes.
const stubFile = "stub.batches"

// stubBroker is the broker: one partition per topic, made when first
// named.
type stubBroker struct {
	dir  string
	host string // where it listens, for its metadata
	port int32

	mu     sync.Mutex
	topics map[string]*stubPartition
	grew   chan struct{} // closed (and replaced) when a partition grows
	pid    int64
}

// stubPartition is a partition's batches with their base offsets
// rewritten to where they landed, back to back in chunks: a chunk is
// never copied to grow, which at the rates measured would cost the stub
// more than everything else it does.
type stubPartition struct {
	chunks  [][]byte
	batches []stubBatch
	next    int64
}

// stubBatch is where a batch is: chunks[chunk][start:end].
type stubBatch struct {
	base              int64
	chunk, start, end int
}

// stubChunk is a chunk's size (a var for the test, which makes many).
var stubChunk = 16 << 20

// Kafka's record batch header, as far as the stub reads it.
const (
	batchLengthEnd     = 12 // base offset int64, batch length int32
	lastOffsetDeltaPos = 23
	batchHeaderLen     = 61
)

// add appends the batches in b, which a client sent or the stub's file
// held, and returns the first one's base offset.
func (p *stubPartition) add(b []byte) (int64, error) {
	first := p.next
	for len(b) > 0 {
		if len(b) < batchHeaderLen {
			return 0, errors.New("record batch cut short")
		}
		n := batchLengthEnd + int(int32(binary.BigEndian.Uint32(b[8:])))
		if n < batchHeaderLen || n > len(b) {
			return 0, fmt.Errorf("record batch length %d of %d bytes", n, len(b))
		}
		c := len(p.chunks) - 1
		if c < 0 || len(p.chunks[c])+n > cap(p.chunks[c]) {
			p.chunks = append(p.chunks, make([]byte, 0, max(n, stubChunk)))
			c++
		}
		start := len(p.chunks[c])
		p.chunks[c] = append(p.chunks[c], b[:n]...)
		binary.BigEndian.PutUint64(p.chunks[c][start:], uint64(p.next))
		p.batches = append(p.batches, stubBatch{base: p.next, chunk: c, start: start, end: start + n})
		p.next += int64(int32(binary.BigEndian.Uint32(b[lastOffsetDeltaPos:]))) + 1
		b = b[n:]
	}
	return first, nil
}

// from is the batches holding offset at and after it in one chunk, at
// most limit bytes but at least one batch, as Kafka answers.
func (p *stubPartition) from(at int64, limit int) []byte {
	if at >= p.next {
		return nil
	}
	i := max(sort.Search(len(p.batches), func(i int) bool { return p.batches[i].base > at })-1, 0)
	first := p.batches[i]
	end := first.end
	for _, b := range p.batches[i+1:] {
		if b.chunk != first.chunk || b.end-first.start > limit {
			break
		}
		end = b.end
	}
	return p.chunks[first.chunk][first.start:end]
}

func newStubBroker(dir string) (*stubBroker, error) {
	s := &stubBroker{dir: dir, topics: map[string]*stubPartition{}, grew: make(chan struct{})}
	b, err := os.ReadFile(filepath.Join(dir, stubFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.partition(runnelTopic).add(b); err != nil {
		return nil, fmt.Errorf("%s: %w", stubFile, err)
	}
	return s, nil
}

// save writes the measured topic's batches for the stub's next process.
func (s *stubBroker) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Create(filepath.Join(s.dir, stubFile))
	if err != nil {
		return err
	}
	for _, c := range s.partition(runnelTopic).chunks {
		if _, err := f.Write(c); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// partition is topic's partition, made if new; s.mu is held.
func (s *stubBroker) partition(topic string) *stubPartition {
	p := s.topics[topic]
	if p == nil {
		p = &stubPartition{}
		s.topics[topic] = p
	}
	return p
}

// serve answers every connection of ln until it is closed.
func (s *stubBroker) serve(ln net.Listener) error {
	a := ln.Addr().(*net.TCPAddr)
	s.host, s.port = a.IP.String(), int32(a.Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.conn(c)
	}
}

// conn answers one connection's requests in order, one at a time.
func (s *stubBroker) conn(c net.Conn) {
	defer c.Close()
	var size [4]byte
	var body, out []byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n > 64<<20 {
			return
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		var err error
		if out, err = s.answer(body, out[:0]); err != nil {
			fmt.Fprintln(os.Stderr, "stub broker:", err)
			return
		}
		if out == nil {
			continue // acks=0
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// answer decodes one request and appends its framed response to out.
func (s *stubBroker) answer(body, out []byte) ([]byte, error) {
	r := kbin.Reader{Src: body}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	r.NullableString()
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("API key %d", key)
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	resp, err := s.dispatch(req)
	if err != nil || resp == nil {
		return nil, err
	}
	out = append(out, 0, 0, 0, 0)
	out = kbin.AppendInt32(out, corr)
	if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// stubVersions are the API versions the stub speaks: enough for
// franz-go's producer and consumer, on topic names (no topic IDs).
// ApiVersions is the client's first request, at the newest version it
// knows, so the stub takes any the decoder knows.
var stubVersions = map[kmsg.Key][2]int16{
	kmsg.ApiVersions:    {0, new(kmsg.ApiVersionsRequest).MaxVersion()},
	kmsg.Metadata:       {0, 9},
	kmsg.Produce:        {3, 9},
	kmsg.Fetch:          {4, 12},
	kmsg.ListOffsets:    {1, 6},
	kmsg.InitProducerID: {0, 4},
}

func (s *stubBroker) dispatch(req kmsg.Request) (kmsg.Response, error) {
	if v, ok := stubVersions[kmsg.Key(req.Key())]; !ok || req.GetVersion() < v[0] || req.GetVersion() > v[1] {
		return nil, fmt.Errorf("%s v%d is not spoken here", kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		r := resp.(*kmsg.ApiVersionsResponse)
		for k, v := range stubVersions {
			r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.Int16(), MinVersion: v[0], MaxVersion: v[1]})
		}
	case *kmsg.MetadataRequest:
		s.metadata(req, resp.(*kmsg.MetadataResponse))
	case *kmsg.InitProducerIDRequest:
		s.mu.Lock()
		s.pid++
		resp.(*kmsg.InitProducerIDResponse).ProducerID = s.pid
		s.mu.Unlock()
	case *kmsg.ProduceRequest:
		if err := s.produce(req, resp.(*kmsg.ProduceResponse)); err != nil || req.Acks == 0 {
			return nil, err
		}
	case *kmsg.ListOffsetsRequest:
		s.listOffsets(req, resp.(*kmsg.ListOffsetsResponse))
	case *kmsg.FetchRequest:
		s.fetch(req, resp.(*kmsg.FetchResponse))
	}
	return resp, nil
}

func (s *stubBroker) metadata(req *kmsg.MetadataRequest, r *kmsg.MetadataResponse) {
	r.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: s.host, Port: s.port}}
	r.ControllerID = 0
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, t := range req.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
			s.partition(*t.Topic)
		}
	}
	if req.Topics == nil {
		for name := range s.topics {
			names = append(names, name)
		}
	}
	for _, name := range names {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Replicas, p.ISR = []int32{0}, []int32{0}
		t.Partitions = []kmsg.MetadataResponseTopicPartition{p}
		r.Topics = append(r.Topics, t)
	}
}

func (s *stubBroker) produce(req *kmsg.ProduceRequest, r *kmsg.ProduceResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			base, err := s.partition(t.Topic).add(p.Records)
			if err != nil {
				return err
			}
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.BaseOffset = p.Partition, base
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	close(s.grew)
	s.grew = make(chan struct{})
	return nil
}

func (s *stubBroker) listOffsets(req *kmsg.ListOffsetsRequest, r *kmsg.ListOffsetsResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.Timestamp, rp.Offset = p.Partition, -1, 0
			if p.Timestamp == -1 { // latest; earliest and any time is 0
				rp.Offset = s.partition(t.Topic).next
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
}

// fetch answers with what the partitions hold from the offsets asked,
// waiting up to the request's MaxWait if they hold nothing yet.
func (s *stubBroker) fetch(req *kmsg.FetchRequest, r *kmsg.FetchResponse) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		s.mu.Lock()
		r.Topics = r.Topics[:0]
		size := 0
		for _, t := range req.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := s.partition(t.Topic)
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.HighWatermark, rp.LastStableOffset = p.Partition, sp.next, sp.next
				rp.RecordBatches = sp.from(p.FetchOffset, int(min(p.PartitionMaxBytes, req.MaxBytes)))
				size += len(rp.RecordBatches)
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		grew := s.grew
		s.mu.Unlock()
		wait := time.Until(deadline)
		if size > 0 || wait <= 0 {
			return
		}
		select {
		case <-grew:
		case <-time.After(wait):
		}
	}
}
