package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kgo"
)

// config is what a system is opened with. Every field is set by the
// harness; a system ignores what does not apply to it.
type config struct {
	Dir       string // the system's own directory
	Durable   bool   // acknowledge only after the data is on stable storage
	Writers   int    // concurrent appenders in this process (tuning hint)
	ValueSize int    // every value in a run has this size
	Serve     bool   // latency host: accept a reader from another process
	Attach    string // latency reader: what the host's Ready returned
	Create    bool   // create the log/table/stream (first opener)
}

// store is one open instance of a system.
type store interface {
	// Append stores v and returns once it is acknowledged at the
	// configured durability. Safe for concurrent use; v may be reused
	// after it returns.
	Append(v []byte) error
	// AppendBatch stores vs with the system's bulk path (used to load
	// data for the read workload, not timed).
	AppendBatch(vs [][]byte) error
	// Scan calls fn with every stored value, oldest first. v is valid
	// only during the call.
	Scan(fn func(v []byte)) error
	Close() error
}

// asyncStore is a store with a pipelined append: the caller goes on
// while earlier appends are in flight, and learns of each one's
// acknowledgement through done (called in append order, not concurrently).
type asyncStore interface {
	// AsyncAppender returns the function that appends v this way, with
	// done for every append it makes. A writer makes done once, as a
	// program streaming records would, and a system adapts it to its own
	// callback's shape once here: a closure made per append would count
	// the harness's allocations against the system (one more for a system
	// whose callback has another shape).
	AsyncAppender(done func(error)) func(v []byte)
	// Flush waits until every append made before it was acknowledged.
	Flush() error
}

// tailer is a store that can wait for new records written by another
// process: the reader side of the latency workload.
type tailer interface {
	// Tail calls fn for each record as it arrives until fn returns false
	// or ctx ends.
	Tail(ctx context.Context, fn func(v []byte) bool) error
}

// hoster is a store that other processes reach through it (NATS): Ready
// returns what a reader passes as config.Attach.
type hoster interface {
	Ready() string
}

// system describes one contestant.
type system struct {
	Name string
	// Open opens (creating if needed) the system in cfg.Dir.
	Open func(cfg config) (store, error)
	// OpenTail opens the reader side of the latency workload; nil if the
	// system cannot block waiting for another process's appends.
	OpenTail     func(cfg config) (tailer, func() error, error)
	Buffered     bool // has a buffered (no fsync per append) mode
	MultiProcess bool // several processes may append to one log
	Raw          bool // the raw limit, not a real system
	LatencyRef   bool // the physical floor of the latency workload only
	Note         string

	// MinWarmup and MinSeconds lengthen the append phases of -quick for
	// a system whose pipeline holds many records (a Kafka client buffers
	// up to 50,000, a second's worth of acknowledgements at start-up):
	// shorter phases measure its start, not its rate.
	MinWarmup, MinSeconds float64
}

// systems in the order they appear in tables and plots.
var systems = append([]*system{
	runnelSystem(runnel.BackendIOURing),
	runnelSystem(runnel.BackendPwrite),
	kafkaSystem(kgo.AllISRAcks(), kafkaAllName, "franz-go client over loopback TCP to a kafka.Server over runnel (pwrite), acks=all, default linger"),
	kafkaAcks1System(),
	kafkaStubSystem(),
	rawSystem(),
	tidwallSystem(),
	raftWALSystem(),
	bboltSystem(),
	sqliteSystem(),
	natsSystem(),
}, futexSystems...)

func findSystem(name string) (*system, error) {
	i := slices.IndexFunc(systems, func(s *system) bool { return s.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("unknown system %q", name)
	}
	return systems[i], nil
}

// reference is the system every ratio is taken against: runnel with its
// default backend.
const reference = "runnel/pwrite"

// rawName is the raw-limit pseudo-system.
const rawName = "raw pwrite"

var errUnsupported = errors.New("not supported by this system")
