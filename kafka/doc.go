// Package kafka serves a runnel Log over the Kafka protocol, so that Kafka
// clients in any language — kcat and librdkafka, franz-go, Sarama,
// kafka-go, KafkaJS, kafka-python, each tested — produce to and consume
// from a runnel directory. It is one more user of
// the Log: native producers and consumers in this and other processes keep
// working on the same directory at the same time. The runnel command's
// "runnel serve" is this package behind a flag set.
//
// # Basics
//
//	l, err := runnel.Open("data", nil)
//	ln, err := net.Listen("tcp", "127.0.0.1:9092")
//	err = kafka.Serve(ctx, l, ln, nil) // until ctx ends; then a graceful stop
//
// or, to control the server's life yourself, NewServer, Server.Serve and
// Server.Shutdown. Each produced batch is stored as one frame, whatever
// the Log's options; a batch whose frame would be larger than
// runnel.MaxFrameBytes is refused with MESSAGE_TOO_LARGE.
//
// # The cluster
//
// The server is a one-broker cluster: node 0 leads every partition of
// every topic, with leader epoch 0, and is the group coordinator. Its
// cluster id is made once and kept in the directory (kafka/cluster.id).
// Topics are addressed by name: every API is offered up to the last
// version that uses topic names (Fetch 12, Produce 12, …), so clients
// never need topic ids. Metadata (v10+) and CreateTopics (v7) report each
// topic's runnel topic id as its Kafka topic id, so a topic deleted and
// made again under its name shows as another topic, and Metadata v12
// answers a topic asked for by id alone.
//
// # Records
//
// A record's key, value (nil and empty kept apart), headers and timestamp
// cross both ways unchanged, except that Kafka timestamps are
// milliseconds: a record written by the Go API with a finer timestamp is
// read over Kafka truncated to the millisecond. A produced batch is
// decompressed (gzip, snappy raw or xerial-framed, lz4, zstd), bounded by
// the largest frame runnel stores, and its records are decoded straight
// into the frame they are stored as (a runnel.RecordBatch): they get
// consecutive offsets and are committed together. Fetches return
// uncompressed batches, one per partition, encoded from the records a
// runnel Consumer per connection and topic reads; a fetch continues from
// the records the last one read but did not return, so reading on costs
// no seek.
//
// # Acknowledgements
//
// acks=-1 (all) is acknowledged as the Log's Durability says: in a
// Durable Log, after the fdatasync. acks=1 is acknowledged once the batch
// is committed and visible to every process (runnel.AckCommitted). acks=0
// gets no response. Idempotent producers (InitProducerId) have their
// sequence numbers checked per producer id and partition; a retried batch
// (of the last five) is acknowledged with its original offsets and not
// stored twice; a gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, and
// so is a batch whose predecessor failed while it waited for that one to
// be stored: a producer's batches are stored in order, each only after the
// one before. This state is kept in
// memory for a day after a producer's last batch, and each batch is noted
// in its partition's producer journal (kafka/producers/) just before it
// is committed, so that a server started anew on the directory answers
// retries of batches stored before it as the last one would have, once it
// has found their records in the log (a batch noted may never have been
// committed): see producer_journal.go for the cases it cannot cover. The state is kept by topic ID: a topic deleted and made
// again under its name, by any process, starts with none, as in Kafka.
// Transactions are not offered: a transactional producer is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients fail on at once, at
// FindCoordinator for its transactional id and at InitProducerId. An
// InitProducerId that finds kafka/producer-ids locked by another server
// on the directory for more than 5 seconds (stopped with Ctrl-Z or
// SIGSTOP, or hung, inside its reservation of a block of ids) is answered
// COORDINATOR_LOAD_IN_PROGRESS, which clients retry, as Kafka's broker
// answers while it waits for a block of ids.
//
// # Deleting records
//
// DeleteRecords (v0-2: kafka-delete-records.sh, kadm's DeleteRecords,
// AdminClient.delete_records) is runnel.Log.DeleteRecords: each
// partition's log start offset moves up to the offset asked for (-1: the
// high watermark), recorded on disk before the answer, whose low
// watermark is the new start; an offset past the high watermark is
// OFFSET_OUT_OF_RANGE, one at or below the start leaves it as it is.
// Every process's readers then begin at the start: ListOffsets' earliest
// answers it, a Fetch below it gets OFFSET_OUT_OF_RANGE (with the
// partition's log start offset and high watermark in the answer, where
// Kafka's broker puts -1) and the client resets by its auto.offset.reset,
// and Fetch and Produce answers report it as their log start offset.
//
// # Topic configs
//
// CreateTopics, AlterConfigs and IncrementalAlterConfigs set a topic's
// retention.ms, retention.bytes and segment.bytes in runnel, where every
// process on the directory follows them. A few more configs describe
// what runnel does and cannot change: cleanup.policy delete,
// compression.type uncompressed (producer, Kafka's default, is taken too),
// max.message.bytes the server's Options.MaxMessageBytes,
// message.timestamp.type CreateTime, min.insync.replicas 1 and
// unclean.leader.election.enable false. Those are taken at those values,
// which tools send as Kafka's defaults, and change nothing; any other
// value is refused with INVALID_CONFIG and a message naming the config
// and why, as is every other config. IncrementalAlterConfigs' APPEND and
// SUBTRACT change cleanup.policy's list as in Kafka, so APPEND delete is
// taken and APPEND compact refused. DescribeConfigs reports all nine,
// the fixed ones read-only at runnel's value, as defaults, and, when
// asked, as Kafka's broker does, each one's synonyms (the value set, then
// the default) and documentation. DescribeConfigs of the broker's loggers
// (BROKER_LOGGER, named "0") answers one, "root", at the least severe
// level Options.Logger is enabled for in log4j's names (OFF for the
// default, which discards), read-only since the Logger's owner sets it.
//
// # Groups
//
// Kafka consumer group G is runnel group G. Each Kafka member is, for
// every topic it subscribes to, a member of runnel group G (named
// "kafka/<member id>" in runnel.Log.DescribeGroup); runnel's byte-range
// locks decide which partitions it owns, among all the group's members —
// native consumers in any process, Kafka members of this server and of
// other servers on the same directory — and SyncGroup gives each Kafka
// member exactly those partitions (the group leader's own assignment is
// not used). The membership reads no record (its runnel Consumer pauses
// the partitions it owns): the member's fetches read them. When runnel
// moves a partition (a native member joined or died), the server starts a
// Kafka rebalance, and it releases a partition a Kafka member is losing
// only after that member was given an assignment without it and joined
// again — what a client does only after it stopped reading the partition —
// so a Kafka member and another member never own one partition at once.
// That holds across the server's death too: each Kafka member's runnel
// membership leaves a lease of its session timeout on the partitions it
// owns (runnel.ConsumerOptions.Lease), so when the server dies (SIGKILL,
// a crash), the other members — native ones, other servers' and the
// restarted server's own Kafka members — take them only once the lease
// has run since each first saw them free. Until then the dead server's
// clients, which cannot tell that their coordinator died, fetch on from
// the restarted server, and learn at their next heartbeat (well within
// the session timeout) to join again. A server shut down cleanly leaves
// the leases in place too (runnel.Consumer.Abandon), since its clients
// are alive and do the same, also on partitions a member was still
// handing over (its client had not let go yet) and for a member whose
// session runs out while the shutdown waits for requests under way (it
// answers no heartbeat then); a member that leaves (LeaveGroup), times out or is
// replaced by a new static instance hands its partitions over at once.
// A JoinGroup that lingered (sent on a connection its client gave up,
// read late) and names a generation older than the one its client was
// last answered an assignment in does not count as the client letting
// go: the server keeps holding what the client may read (and, if it is
// taking a partition away, asks for another rebalance once the client is
// answered an assignment after such a join), and answers
// REBALANCE_IN_PROGRESS to a SyncGroup whose assignment such a join
// overtook. A join at generation -1, or with consumer metadata older than
// v2 (no generation), cannot be told stale and is taken as it says.
// Neither does an ILLEGAL_GENERATION answer count as the client letting
// go: the request it answered may have lingered too, its answer never
// read, and a client that did act on one drops everything as lost and
// joins claiming nothing, which counts. Only a cooperative client's join
// that says nothing of what it owns (consumer metadata v0) is taken, after
// such an answer, to hold nothing.
//
// A server restarted at the same address resumes its groups, as a Kafka
// coordinator that takes a group over loads it from __consumer_offsets:
// each group's last settled generation, its members (with their
// sessions, protocols and assignments) and what their runnel sides gave
// and hold are kept in kafka/groups/<address>, rewritten at each
// SyncGroup answered and each member's leaving or expiry (never at a
// heartbeat), by the server at Options.Advertise, or else at the address
// it listens on, which holds a lock on it while it runs. Server.Serve
// loads it: each group Stable at that generation, each member with a
// fresh session, its runnel Consumers succeeding the old ones
// (runnel.ConsumerOptions.Succeeds), so that they take back at once all
// the partitions the lease keeps from everyone else. The clients
// heartbeat, commit and fetch on with no rebalance. A member whose share
// shrank meanwhile (another member joined) has the group rebalance and
// hands what is beyond its share over only once its client let go of it,
// as after any assignment; one that does not get back exactly what its
// client was given (another member took a partition once its lease
// ran, a topic is gone) has the group rebalance; a
// file older than its clients' generation has them refused
// (ILLEGAL_GENERATION) and join again; a client that never comes back
// expires after its session, which, as at a JoinGroup, is within
// Options.MinSessionTimeout and MaxSessionTimeout (a saved one outside
// them, from a server with other bounds, is clamped and logged). A damaged file is reported (the file and
// the byte) and ignored. Only then, or without the file, do a server's
// crash or restart leave its Kafka members' partitions unread for about a
// session timeout, as a dead member's are in Kafka. A server down for
// longer than that finds its clients'
// partitions taken over while they may still fetch from it once it is
// back, as a Kafka consumer cut off from its coordinator for longer than
// its session fetches on.
// OffsetCommit writes runnel's committed offsets through the member's
// runnel membership, which refuses a partition the member does not own;
// OffsetFetch, DescribeGroup, ResetGroupOffsets and native members all see
// the same offsets. In a partition added to the topic (CreatePartitions)
// a group that existed before it has committed offset 0, and OffsetFetch
// answers 0: a member resetting to the latest offset does not skip the
// records produced there before it took the partition.
//
// Group protocols other than "consumer" (Kafka Connect's, for example) are
// coordinated as a Kafka broker does, with the leader's assignment.
//
// # Security and bad input
//
// The server listens where it is told; runnel serve defaults to
// 127.0.0.1. Options.TLS makes every connection TLS, and
// Options.Credentials requires SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
// before any request but ApiVersions. There are no ACLs: a client that
// may connect may do everything, which Metadata, DescribeCluster and
// DescribeGroups say when asked for its authorized operations. A request larger than Options.MaxRequestBytes,
// or one that does not decode, closes its connection with a log line;
// request decoding is bounded by the request's size (every array length
// is checked against the bytes left) and decompression by the largest
// frame. What a request can make the server do is bounded too: a Fetch
// response by Options.MaxFetchBytes, the partitions one CreateTopics
// request asks for by Options.MaxPartitions, and the fetch buffers a
// connection keeps between requests to 64 MiB. Idle connections are
// closed after Options.IdleTimeout.
//
// # Metrics
//
// Server.Stats counts connections, requests (also by API and error code),
// and produced and fetched records and bytes; package promrunnel's
// KafkaCollector exposes them to Prometheus. Options.OnRequest is called once per request with
// its API, version, first error code, duration and sizes.
package kafka
