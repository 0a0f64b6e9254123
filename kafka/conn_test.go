package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBadRequestsCloseTheConnection(t *testing.T) {
	ts := startServer(t, &Options{MaxRequestBytes: 1 << 20})
	header := func(key, version int16) []byte {
		b := kbin.AppendInt16(nil, key)
		b = kbin.AppendInt16(b, version)
		b = kbin.AppendInt32(b, 1)
		return kbin.AppendNullableString(b, nil)
	}
	cases := []struct {
		name string
		send func(rc *rawConn)
		log  string
	}{
		{"oversized", func(rc *rawConn) {
			rc.nc.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
		}, "request size out of bounds"},
		{"negative size", func(rc *rawConn) {
			rc.nc.Write([]byte{0xff, 0xff, 0xff, 0xff})
		}, "request size out of bounds"},
		{"truncated header", func(rc *rawConn) {
			rc.writeFrame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0})
		}, "cut short"},
		{"malformed body", func(rc *rawConn) {
			// Metadata v1 with an array length far beyond the body.
			rc.writeFrame(append(header(3, 1), 0x7f, 0xff, 0xff, 0xff, 1))
		}, "malformed Metadata v1 request"},
		{"unknown API", func(rc *rawConn) {
			rc.writeFrame(header(9999, 0))
		}, "unsupported API key 9999"},
		{"version without an error field", func(rc *rawConn) {
			// DeleteTopics v6 answers each topic's error, with no
			// partitions to answer it in (old Fetch versions do).
			rc.writeFrame(append(header(kmsg.DeleteTopics.Int16(), 6), make([]byte, 64)...))
		}, "DeleteTopics version 6 is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := ts.raw()
			tc.send(rc)
			if !rc.closed() {
				t.Fatal("connection still open")
			}
			waitFor(t, "the log line", func() bool { return logsContain(ts, tc.log) })
		})
	}
	// The server still serves.
	rc := ts.raw()
	if resp := rc.request(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		t.Fatalf("metadata after bad requests: %+v", resp)
	}
}

func TestUnsupportedVersions(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	// An ApiVersions newer than the server's: a v0 answer with the error
	// and the list, so that the client retries.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 5
	av.ClientSoftwareName, av.ClientSoftwareVersion = "t", "1"
	rc.corr++
	var body []byte
	body = kbin.AppendInt16(body, av.Key())
	body = kbin.AppendInt16(body, 5)
	body = kbin.AppendInt32(body, rc.corr)
	body = kbin.AppendNullableString(body, nil)
	body = append(body, 0)
	rc.writeFrame(av.AppendTo(body))
	v0 := kmsg.NewPtrApiVersionsRequest()
	resp, err := rc.read(v0)
	if err != nil {
		t.Fatal(err)
	}
	if ar := resp.(*kmsg.ApiVersionsResponse); ar.ErrorCode != kerr.UnsupportedVersion.Code || len(ar.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v5: code %d, %d keys", ar.ErrorCode, len(ar.ApiKeys))
	}
	// Produce is advertised from v0 (librdkafka needs that for
	// compression) but v0-2 are refused when they arrive.
	av = kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "t", "1"
	ar := rc.request(av).(*kmsg.ApiVersionsResponse)
	for _, k := range ar.ApiKeys {
		if k.ApiKey == kmsg.Produce.Int16() && k.MinVersion != 0 {
			t.Errorf("Produce advertised from v%d, want v0", k.MinVersion)
		}
	}
	// A version above the supported range gets the error code where the
	// response has one.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 13
	if mr := rc.request(md).(*kmsg.MetadataResponse); mr.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("Metadata v13: code %d", mr.ErrorCode)
	}
	// Below it, in a response without one, each partition named gets it
	// (TestKafkaPython/old-api has Fetch, ListOffsets and OffsetCommit).
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 0, "g"
	oft := kmsg.NewOffsetFetchRequestTopic()
	oft.Topic, oft.Partitions = "t", []int32{0, 2}
	of.Topics = append(of.Topics, oft)
	var got []string
	for _, rt := range rc.request(of).(*kmsg.OffsetFetchResponse).Topics {
		for _, rp := range rt.Partitions {
			got = append(got, fmt.Sprintf("%s/%d %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode)))
		}
	}
	if want := []string{"t/0 UNSUPPORTED_VERSION: The version of API is not supported.", "t/2 UNSUPPORTED_VERSION: The version of API is not supported."}; !slices.Equal(got, want) {
		t.Fatalf("OffsetFetch v0: %q, want %q", got, want)
	}
	// A Fetch's records are empty, not null, as in any fetch.
	f := kmsg.NewPtrFetchRequest()
	f.Version = 3
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	f.Topics = append(f.Topics, ft)
	fr := rc.request(f).(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("Fetch v3: %+v, want one partition", fr)
	}
	if rp := fr.Topics[0].Partitions[0]; rp.ErrorCode != kerr.UnsupportedVersion.Code || rp.RecordBatches == nil {
		t.Fatalf("Fetch v3: code %v, records %v (nil: null), want UNSUPPORTED_VERSION and no records", kerr.ErrorForCode(rp.ErrorCode), rp.RecordBatches)
	}
}

func TestIdleConnectionsTimeOut(t *testing.T) {
	ts := startServer(t, &Options{IdleTimeout: 100 * time.Millisecond})
	rc := ts.raw()
	rc.request(kmsg.NewPtrMetadataRequest())
	if !rc.closed() {
		t.Fatal("idle connection not closed")
	}
	waitFor(t, "the log line", func() bool { return logsContain(ts, "closing idle connection") })
}

func TestManyClientsAtOnce(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("many", 4)
	const clients, each = 24, 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.DefaultProduceTopic("many"))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			var recs []*kgo.Record
			for j := range each {
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i, j)), Value: []byte("v")})
			}
			errs <- cl.ProduceSync(context.Background(), recs...).FirstErr()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cl := ts.client(kgo.ConsumeTopics("many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := pollN(t, cl, clients*each); len(got) != clients*each {
		t.Fatalf("consumed %d records, want %d", len(got), clients*each)
	}
	if st := ts.srv.Stats(); st.ConnectionsAccepted < clients || st.ProducedRecords != clients*each {
		t.Fatalf("stats %+v", st)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	ts := startServer(t, nil)
	ts.createTopic("sd", 1)
	var events []RequestEvent
	var mu sync.Mutex
	ts.srv.opts.OnRequest = func(e RequestEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	// A long-polling fetch is in flight when the server shuts down: it is
	// answered (empty), not cut off.
	rc := ts.raw()
	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 11
	fr.MaxWaitMillis = 60000
	fr.MinBytes = 1
	fr.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "sd"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	got := make(chan error, 1)
	go func() {
		rc.corr++
		var body []byte
		body = kbin.AppendInt16(body, fr.Key())
		body = kbin.AppendInt16(body, fr.Version)
		body = kbin.AppendInt32(body, rc.corr)
		body = kbin.AppendNullableString(body, nil)
		rc.writeFrame(fr.AppendTo(body))
		_, err := rc.read(fr)
		got <- err
	}()
	waitFor(t, "the fetch to be waiting", func() bool { return ts.srv.waitingFetches.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the in-flight fetch was not answered: %v", err)
	}
	if !rc.closed() {
		t.Fatal("connection open after shutdown")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || events[len(events)-1].API != "Fetch" {
		t.Fatalf("OnRequest events %+v", events)
	}
}

// TestShutdownCutsRequestHalfRead: a connection whose client sent part of
// a request and stopped does not hold Shutdown up: the request is not in
// flight until it has arrived, so Shutdown cuts its read as it cuts the
// wait of an idle connection. runnel serve stopped with Ctrl-C waited out
// its 30 s grace for such a connection and exited 1 with "context
// deadline exceeded".
func TestShutdownCutsRequestHalfRead(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw()
	rc.nc.Write(binary.BigEndian.AppendUint32(nil, 1000))
	rc.nc.Write(make([]byte, 100))
	waitFor(t, "the server to read the request's size", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		for c := range ts.srv.conns {
			if c.phase.Load() == connReading {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !rc.closed() {
		t.Fatal("connection open after shutdown")
	}
}

// TestStalledRequestHoldsWhatArrived: a connection whose client sent the
// size of a large request and a few bytes of it holds about the bytes it
// sent, not the size it claimed: the server allocated the whole claimed
// size (up to MaxRequestBytes, 100 MiB) on the size's four bytes, so a
// hundred such connections, 400 bytes in all, made its heap 10 GB, which
// the garbage collector's target then doubled for every other allocation.
func TestStalledRequestHoldsWhatArrived(t *testing.T) {
	ts := startServer(t, nil)
	const conns, claimed, sent = 8, defaultMaxRequestBytes, 1000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		rc := ts.raw()
		rc.nc.Write(binary.BigEndian.AppendUint32(nil, claimed))
		rc.nc.Write(make([]byte, sent))
	}
	waitFor(t, "every connection to read its request", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		reading := 0
		for c := range ts.srv.conns {
			if c.phase.Load() == connReading {
				reading++
			}
		}
		return reading == conns
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > conns<<20 {
		t.Fatalf("%d connections that sent %d bytes of a %d-byte request grew the heap by %d bytes", conns, sent, claimed, grew)
	}
}

// TestReadBody: a request read into a buffer that grows as its bytes
// arrive, a few at a time, is the request, whatever buffer it starts from.
func TestReadBody(t *testing.T) {
	req := make([]byte, 3*firstBodyChunk+17)
	for i := range req {
		req[i] = byte(i * 7)
	}
	for _, start := range []int{0, 100, firstBodyChunk, 2 * firstBodyChunk, len(req), 2 * len(req)} {
		for _, n := range []int{0, 1, firstBodyChunk, firstBodyChunk + 1, len(req)} {
			r := iotest.HalfReader(bytes.NewReader(req[:n]))
			got, err := readBody(r, make([]byte, 0, start), n)
			if err != nil || !bytes.Equal(got, req[:n]) {
				t.Fatalf("buffer of %d, request of %d: read %d bytes, err %v, or not the request", start, n, len(got), err)
			}
		}
		if _, err := readBody(bytes.NewReader(req[:10]), make([]byte, 0, start), len(req)); err == nil {
			t.Fatalf("buffer of %d: a request cut short read without an error", start)
		}
	}
}
