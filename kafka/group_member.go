package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// runnelMember is a Kafka consumer-group member's side in runnel: for
// each topic it subscribes to, a runnel group Consumer (auto-commit off)
// that takes its share of the topic's partitions among all of the group's
// live members — Kafka members of this and other servers, and native
// members in any process — by runnel's byte-range locks.
//
// One goroutine (run) owns the Consumers: it lets each take or give up
// partitions inside TryPoll every tick, and runs the member's commits.
// The Consumers read no record: the Kafka client fetches what the member
// owns, so each pauses the partitions it takes (OnAssigned).
// The partitions a Consumer owns are what SyncGroup hands the Kafka
// member. A partition runnel takes away (a native member joined) is not
// released while the Kafka client may still be reading it: OnRevoked asks
// for a Kafka rebalance and waits until the client was given an
// assignment without it (or, for eager clients, rejoined, which means it
// gave everything up), so a Kafka member and another member never own one
// partition at once.
type runnelMember struct {
	g     *group
	id    string
	log   *runnel.Log
	opts  *Options
	lease time.Duration // the Consumers' ConsumerOptions.Lease: the member's session timeout

	subs  chan []string // the latest subscription, for run
	cmds  chan func(map[string]*runnel.Consumer)
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	errMu sync.Mutex
	err   error // from closing the Consumers

	mu        sync.Mutex
	cond      *sync.Cond
	topics    []string         // wanted (subscribed), sorted
	open      []string         // topics with a Consumer, sorted
	owned     map[string][]int // per topic: owned and not being revoked
	revoking  map[string][]int // per topic: owned, waiting for the client to let go
	held      map[string][]int // per topic: what the Kafka client may be reading
	given     map[string][]int // per topic: the last assignment SyncGroup gave
	eager     bool             // the client gives everything up when it rejoins
	gen       int32            // the current generation
	givenGen  int32            // the generation of the last assignment given
	syncedGen int32            // the newest generation whose SyncGroup answered the client an assignment
	heldSet   uint64           // counts the JoinGroups that set held: a SyncGroup computed before the last is not answered
	heldKept  bool             // the last JoinGroup was taken as stale, and left held as it was
	ticks     uint64           // completed ticks of run
	genTick   uint64           // the first tick after the current generation began
	closing   bool
	abandon   bool // closing leaves the partitions' leases in place (the server shuts down)

	incarnations map[string]runnel.Incarnation // per topic: its Consumer's, for the state file
	predecessors map[string]runnel.Incarnation // per topic: whose partitions a resumed member takes back (group_resume.go)
	resuming     bool                          // resumed, and its first tick not checked yet
	unrejoined   bool                          // resumed, and its client has not joined since: what the Consumers take counts as held
}

// memberTick is how often a member's Consumers check the runnel group:
// it bounds how soon a Kafka member notices a runnel member arriving or
// dying (joins and clean leaves also wake it at once through the group's
// word, which TryPoll checks).
const memberTick = 10 * time.Millisecond

// newRunnelMember makes the runnel side of member id, whose session
// timeout is session: its partitions' lease (capped at runnel.MaxLease;
// the session of its first JoinGroup stays the lease of its Consumers).
func newRunnelMember(g *group, id string, session time.Duration) (*runnelMember, error) {
	rm := &runnelMember{
		g: g, id: id, log: g.co.s.log, opts: &g.co.s.opts, lease: min(session, runnel.MaxLease),
		subs:     make(chan []string, 1),
		cmds:     make(chan func(map[string]*runnel.Consumer)),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		owned:    map[string][]int{},
		revoking: map[string][]int{},
		held:     map[string][]int{},
		given:    map[string][]int{},

		incarnations: map[string]runnel.Incarnation{},
	}
	rm.cond = sync.NewCond(&rm.mu)
	go rm.run()
	return rm, nil
}

// subscribe sets the topics from the member's protocol metadata (the
// consumer protocol's ConsumerMemberMetadata, the same in every protocol a
// client offers), at a JoinGroup, and what its client holds. It never
// blocks: run picks the list up.
func (rm *runnelMember) subscribe(protocols []kmsg.JoinGroupRequestProtocol, refused bool) {
	topics, eager := subscription(protocols)
	gen, known := claimGeneration(protocols)
	rm.mu.Lock()
	defer func() {
		rm.mu.Unlock()
		select {
		case <-rm.subs:
		default:
		}
		rm.subs <- topics
	}()
	rm.topics = topics
	rm.eager = eager
	// A JoinGroup that lingered (sent on a connection its client then
	// gave up, read late by a server that paused) may be read only after
	// the client's later JoinGroup and SyncGroup. What it says the client
	// holds is older than what that SyncGroup gave, and taken for what
	// the client holds it would let a partition being revoked pass to
	// another member while the client, given it, reads it. Its generation
	// tells it: a client's only grows (the Java client's falls to -1 when
	// it is refused, which says nothing), so a claim made in an older
	// generation than the client was last answered an assignment in was
	// made before that answer. It still joins, with the subscription it
	// names, as a duplicate JoinGroup does; what the client holds stays
	// as it is until a JoinGroup sent since says. A refusal since does
	// not make it count (see below): a client that acted on one dropped
	// everything, and a join it sent since claims nothing.
	if known && gen >= 0 && gen < rm.syncedGen {
		rm.opts.Logger.Info("kafka: JoinGroup older than the member's last assignment: what its client holds is kept",
			"group", rm.g.name, "member", rm.id, "generation", gen, "assigned in", rm.syncedGen)
		rm.heldKept = true
		return
	}
	// A client rejoins only after giving up what it lost: an eager one
	// gives up everything, a cooperative one keeps what it says it owns.
	// Its claim is what counts: one that dropped all as lost (franz-go
	// does at a heartbeat that cannot reach the server; franz-go,
	// librdkafka and the Java client do when they act on an
	// ILLEGAL_GENERATION) claims nothing, and, taken
	// to hold its last assignment, would never join again to let go of
	// what it was not given anew, nor a revoke of it end. The server's
	// refusals (ILLEGAL_GENERATION since the member last joined) say
	// less: one may have answered a request that lingered, on a
	// connection the client gave up, and never been read; the Java
	// client ignores one for a generation it has left, librdkafka an
	// OffsetCommit's while it rebalances. Taken as the client dropping
	// everything, it let a partition being revoked pass on while the
	// client, claiming it, read it. It counts only for a client that
	// does not say what it owns: taken to keep its last assignment, one
	// that dropped it would not join again to let go of the rest.
	clear(rm.held)
	claim, claimed := ownedClaim(protocols)
	switch {
	case rm.eager:
	case claimed:
		maps.Copy(rm.held, claim)
	case !refused:
		maps.Copy(rm.held, rm.given)
	}
	rm.heldSet++
	rm.heldKept = false
	rm.unrejoined = false
	rm.cond.Broadcast()
}

// cooperativeProtocol is the one consumer protocol (assignor) whose
// clients keep what they still own across a rebalance (KIP-429); clients
// of every other give up everything when they join again.
const cooperativeProtocol = "cooperative-sticky"

// subscription is the topics a member's protocols subscribe to, sorted,
// and whether it gives up everything when it rejoins (eager: every
// protocol but cooperative-sticky).
func subscription(protocols []kmsg.JoinGroupRequestProtocol) (topics []string, eager bool) {
	eager = true
	for i, p := range protocols {
		if p.Name == cooperativeProtocol {
			eager = false
		}
		if i == 0 {
			topics = subscribedTopics(p.Metadata)
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics), eager
}

// ownedClaim is what a cooperative client says it still owns as it
// joins: the owned partitions of its cooperative-sticky protocol's
// metadata (ConsumerMemberMetadata v1 on, KIP-429), which franz-go, the
// Java client and librdkafka send. claimed is false when the metadata
// names none (v0), or cannot be read whole (kafka-go's v1 leaves them
// out).
func ownedClaim(protocols []kmsg.JoinGroupRequestProtocol) (owned map[string][]int, claimed bool) {
	i := slices.IndexFunc(protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == cooperativeProtocol })
	if i < 0 {
		return nil, false
	}
	var meta kmsg.ConsumerMemberMetadata
	if meta.ReadFrom(protocols[i].Metadata) != nil || meta.Version < 1 {
		return nil, false
	}
	owned = map[string][]int{}
	for _, tp := range meta.OwnedPartitions {
		for _, p := range tp.Partitions {
			owned[tp.Topic] = append(owned[tp.Topic], int(p))
		}
		slices.Sort(owned[tp.Topic])
	}
	return owned, true
}

// claimGeneration is the generation a client says it is in as it joins:
// that of ConsumerMemberMetadata v2 on (KIP-792), which franz-go and the
// Java client fill in with the generation of the last JoinGroup answer
// they had, librdkafka's and sarama's cooperative-sticky with that of
// their last assignment; -1 for none (before the first; always, from
// librdkafka's range and roundrobin and sarama's eager strategies). known
// is false for metadata that names none (v0 and v1: kafka-go, sarama set
// to a Kafka version before 3.2) or cannot be read whole.
func claimGeneration(protocols []kmsg.JoinGroupRequestProtocol) (gen int32, known bool) {
	for _, p := range protocols {
		var meta kmsg.ConsumerMemberMetadata
		if meta.ReadFrom(p.Metadata) == nil && meta.Version >= 2 {
			return meta.Generation, true
		}
	}
	return 0, false
}

// subscribedTopics reads the topics of consumer protocol member metadata,
// which begins with a version and the topic names. Only that is read:
// what follows differs between clients (kafka-go says version 1 but
// leaves out version 1's owned partitions, which a strict decoder
// refuses), and runnel needs none of it. Metadata it cannot read
// subscribes to nothing.
func subscribedTopics(meta []byte) []string {
	b := kbin.Reader{Src: meta}
	b.Int16()
	n := b.ArrayLen() // at most the bytes left
	var topics []string
	for range n {
		topics = append(topics, b.String())
	}
	if !b.Ok() {
		return nil
	}
	return topics
}

// newGeneration notes that a generation began: SyncGroup answers from
// ticks after it.
func (rm *runnelMember) newGeneration(gen int32) {
	rm.mu.Lock()
	rm.gen = gen
	rm.genTick = rm.ticks + 1
	rm.mu.Unlock()
}

// abandonOnClose makes the member's close leave its runnel groups as at
// the server's death: each partition keeps its lease (runnel's
// Consumer.Abandon). For the server's shutdown: its clients, alive, fetch
// on from the next server until their next heartbeat, as after a crash.
func (rm *runnelMember) abandonOnClose() {
	rm.mu.Lock()
	rm.abandon = true
	rm.mu.Unlock()
}

// abandoning reports whether abandonOnClose was called: the member's
// Consumers leave by Abandon, not Close.
func (rm *runnelMember) abandoning() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.abandon
}

// close makes the member leave every runnel group; wait waits for it.
func (rm *runnelMember) close() {
	rm.once.Do(func() {
		rm.mu.Lock()
		rm.closing = true
		rm.cond.Broadcast()
		rm.mu.Unlock()
		close(rm.stop)
	})
}

func (rm *runnelMember) wait() error {
	<-rm.done
	rm.errMu.Lock()
	defer rm.errMu.Unlock()
	return rm.err
}

func (rm *runnelMember) run() {
	defer close(rm.done)
	cons := map[string]*runnel.Consumer{}
	defer func() {
		abandon := rm.abandoning()
		var errs []error
		for _, c := range cons {
			if abandon {
				errs = append(errs, c.Abandon())
			} else {
				errs = append(errs, c.Close())
			}
		}
		rm.errMu.Lock()
		rm.err = errors.Join(errs...)
		rm.errMu.Unlock()
	}()
	tick := time.NewTicker(memberTick)
	defer tick.Stop()
	var want []string
	var subscribed bool
	var lastTry time.Time
	for {
		select {
		case <-rm.stop:
			return
		case want = <-rm.subs:
			lastTry, subscribed = time.Time{}, true
		case f := <-rm.cmds:
			f(cons)
		case <-tick.C:
		}
		if time.Since(lastTry) > time.Second {
			// A subscribed topic that does not exist yet is tried again
			// every second.
			lastTry = time.Now()
			rm.reconcile(cons, want)
		}
		for topic, c := range cons {
			if _, err := c.TryPoll(); err != nil && !errors.Is(err, runnel.ErrClosed) {
				if errors.Is(err, runnel.ErrTopicNotFound) {
					c.Close()
					delete(cons, topic)
					continue
				}
				// Reading is not this Consumer's job (the Kafka client
				// fetches; its partitions are paused); only membership
				// errors matter, and TryPoll returns those: log them.
				rm.opts.Logger.Debug("kafka: runnel group member", "group", rm.g.name, "topic", topic, "err", err)
			}
		}
		rm.snapshot(cons)
		if subscribed {
			rm.checkResumed()
		}
	}
}

// reconcile opens a Consumer for each wanted topic that has none and
// closes those no longer wanted.
func (rm *runnelMember) reconcile(cons map[string]*runnel.Consumer, want []string) {
	for topic, c := range cons {
		if !slices.Contains(want, topic) {
			c.Close()
			delete(cons, topic)
		}
	}
	for _, topic := range want {
		if cons[topic] != nil {
			continue
		}
		c, err := rm.log.Consumer(topic, &runnel.ConsumerOptions{
			Group:             rm.g.name,
			MemberName:        MemberNamePrefix + rm.id,
			DisableAutoCommit: true,
			MaxPollBytes:      minPollBytes,
			MaxPollInterval:   -1,       // a Kafka member's liveness is its session; a revoke waiting for its client holds up the other topics' TryPolls
			Lease:             rm.lease, // its client may fetch on after this server dies
			Succeeds:          rm.predecessorsOf(topic),
			OnAssigned:        func(c *runnel.Consumer, ps []int) { rm.assigned(topic, c, ps) },
			OnRevoked:         func(c *runnel.Consumer, ps []int) { rm.revoked(topic, c, cons, ps) },
		})
		if err != nil {
			if !errors.Is(err, runnel.ErrTopicNotFound) {
				rm.opts.Logger.Warn("kafka: join runnel group", "group", rm.g.name, "topic", topic, "err", err)
			}
			continue
		}
		cons[topic] = c
	}
}

// snapshot publishes what each Consumer owns, for SyncGroup.
func (rm *runnelMember) snapshot(cons map[string]*runnel.Consumer) {
	rm.mu.Lock()
	clear(rm.owned)
	clear(rm.incarnations)
	rm.open = rm.open[:0]
	for topic, c := range cons {
		rm.open = append(rm.open, topic)
		rm.incarnations[topic] = c.Incarnation()
		rm.owned[topic] = slices.DeleteFunc(c.Partitions(), func(p int) bool { return slices.Contains(rm.revoking[topic], p) })
	}
	slices.Sort(rm.open)
	rm.ticks++
	rm.cond.Broadcast()
	ask := rm.ownsUngivenLocked()
	rm.mu.Unlock()
	if ask {
		rm.g.requestRebalance()
	}
}

// ownsUngivenLocked reports whether the member owns a partition that the
// SyncGroup answered in this generation did not give its client: one it
// took after, which the client learns of only in a rebalance. Owned and
// given are both taken from snapshots, under rm.mu, so a partition taken
// while a SyncGroup waited is either in what it gave or found here at
// the next snapshot. Until the next generation begins the group stays
// rebalancing, and asking again changes nothing. A resumed member's first
// tick checks what it took back instead (checkResumed).
func (rm *runnelMember) ownsUngivenLocked() bool {
	if rm.givenGen != rm.gen || rm.gen == 0 || rm.resuming {
		return false
	}
	for topic, ps := range rm.owned {
		if slices.ContainsFunc(ps, func(p int) bool { return !slices.Contains(rm.given[topic], p) }) {
			return true
		}
	}
	return false
}

// assigned is OnAssigned: the member took partitions. The Kafka client
// fetches them by its own offsets, so the Consumer pauses them: it keeps
// them owned, and its TryPolls do the membership's work, but reads
// nothing (it read every record appended, which the client reads too);
// and the client learns of the partitions in a rebalance: a SyncGroup
// still to come hands them out, or the next snapshot finds them not given
// (ownsUngivenLocked). What a resumed member takes before its client
// joins again may be what the client reads (heldOnResume).
func (rm *runnelMember) assigned(topic string, c *runnel.Consumer, ps []int) {
	if err := c.Pause(ps...); err != nil { // it owns them: never
		rm.opts.Logger.Warn("kafka: pause runnel group member", "group", rm.g.name, "topic", topic, "err", err)
	}
	rm.heldOnResume(topic, ps)
}

// revoked is OnRevoked: runnel is taking partitions away. It returns once
// the Kafka client no longer holds them — it was given an assignment
// without them and then joined again, which a client does only after it
// stopped reading what it lost — running the member's commits meanwhile,
// or when the member goes away. A member that goes away as at the
// server's death (abandonOnClose) abandons c here, so that the partitions
// the client may still read keep their lease, as its others do.
func (rm *runnelMember) revoked(topic string, c *runnel.Consumer, cons map[string]*runnel.Consumer, ps []int) {
	defer func() {
		if rm.abandoning() {
			if err := c.Abandon(); err != nil {
				rm.opts.Logger.Warn("kafka: abandon runnel group member", "group", rm.g.name, "topic", topic, "err", err)
			}
		}
	}()
	rm.mu.Lock()
	if rm.closing {
		rm.mu.Unlock()
		return
	}
	rm.revoking[topic] = ps
	rm.owned[topic] = slices.DeleteFunc(slices.Clone(rm.owned[topic]), func(p int) bool { return slices.Contains(ps, p) })
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		delete(rm.revoking, topic)
		rm.mu.Unlock()
	}()
	askedAt := int32(-1) // syncedGen when the rebalance was last asked for
	for {
		rm.mu.Lock()
		held := slices.ContainsFunc(rm.held[topic], func(p int) bool { return slices.Contains(ps, p) })
		closing := rm.closing
		synced, kept := rm.syncedGen, rm.heldKept
		rm.mu.Unlock()
		if !held || closing {
			return
		}
		if askedAt < 0 || synced != askedAt && kept {
			// Asked once, and again each time the client is answered
			// an assignment (without ps) after a join taken as stale
			// (subscribe): a client that lost the answer it was taken
			// to have may have lost nothing it knew of since, and not
			// join again by itself. Otherwise the client, having lost
			// ps, joins again once it let go of them, however long its
			// revoke takes; a rebalance asked for meanwhile would drop
			// it at the rebalance timeout.
			rm.g.requestRebalance()
			askedAt = synced
		}
		select {
		case <-rm.stop:
			return
		case f := <-rm.cmds:
			f(cons)
		case <-time.After(memberTick):
		}
		// SyncGroup waits for ticks; this one counts as one.
		rm.snapshot(cons)
	}
}

// assignment waits (up to settle) until runnel's ownership is settled for
// the generation gen began, records what it gives the client as held,
// and returns it in the consumer protocol's encoding, with what answered
// needs to tell whether a JoinGroup set what the client holds since.
func (rm *runnelMember) assignment(gen int32, settle time.Duration) (assignment []byte, heldSet uint64) {
	deadline := time.Now().Add(settle)
	rm.mu.Lock()
	for rm.ticks < rm.genTick+1 && !rm.closing && time.Now().Before(deadline) {
		rm.waitLocked(deadline)
	}
	topics := slices.Clone(rm.topics)
	rm.mu.Unlock()
	for time.Now().Before(deadline) && !rm.settled(topics) {
		time.Sleep(memberTick)
	}
	rm.mu.Lock()
	given := rm.giveLocked()
	heldSet = rm.heldSet
	rm.mu.Unlock()
	var a kmsg.ConsumerMemberAssignment
	for _, topic := range slices.Sorted(maps.Keys(given)) {
		t := kmsg.ConsumerMemberAssignmentTopic{Topic: topic}
		for _, p := range given[topic] {
			t.Partitions = append(t.Partitions, int32(p))
		}
		a.Topics = append(a.Topics, t)
	}
	return a.AppendTo(nil), heldSet
}

// answered reports whether the assignment a SyncGroup of generation gen
// computed (with heldSet, from assignment) may be answered, and if so
// notes that the client was answered one in gen (subscribe). It may not
// once a JoinGroup of the member set what the client holds since: what it
// gave is then no longer held, and a partition of it may have passed on.
// Only a JoinGroup that lingered comes between a client's SyncGroup and
// its answer; the client, answered REBALANCE_IN_PROGRESS, joins again.
func (rm *runnelMember) answered(gen int32, heldSet uint64) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.heldSet != heldSet {
		return false
	}
	rm.syncedGen = max(rm.syncedGen, gen)
	return true
}

// giveLocked makes the owned partitions (less those being revoked) the
// client's assignment. Until the client joins again it may still read
// what it had before, so those stay held too.
func (rm *runnelMember) giveLocked() map[string][]int {
	rm.givenGen = rm.gen
	clear(rm.given)
	for topic, ps := range rm.owned {
		if len(ps) > 0 {
			rm.given[topic] = slices.Clone(ps)
			rm.holdLocked(topic, ps)
		}
	}
	return maps.Clone(rm.given)
}

// holdLocked adds partitions of topic to what the client may be reading.
func (rm *runnelMember) holdLocked(topic string, ps []int) {
	held := append(rm.held[topic], ps...)
	slices.Sort(held)
	rm.held[topic] = slices.Compact(held)
}

// waitLocked waits on rm.cond until woken or the deadline.
func (rm *runnelMember) waitLocked(deadline time.Time) {
	t := time.AfterFunc(time.Until(deadline), func() {
		rm.mu.Lock()
		rm.cond.Broadcast()
		rm.mu.Unlock()
	})
	rm.cond.Wait()
	t.Stop()
}

// settled reports whether every partition of the topics is owned by some
// live member of the runnel group, or held back by a dead member's lease,
// and this member has a Consumer for every topic that exists.
//
// A topic whose offsets file DescribeGroup cannot read (damage) counts as
// settled: neither its ownership nor this member's joining it (which
// fails on the same file, logged by reconcile) can be told or will come
// about while SyncGroup waits, as only an operator mends the file, so
// waiting for it would only hold up every SyncGroup by the settle time.
// The member is then handed what it owns of the other topics; joining
// the damaged one later moves partitions, which asks for a rebalance.
func (rm *runnelMember) settled(topics []string) bool {
	info, err := rm.log.DescribeGroup(rm.g.name)
	damaged := damagedTopics(err)
	if err != nil && len(damaged) == 0 {
		return false
	}
	rm.mu.Lock()
	open := slices.Clone(rm.open)
	rm.mu.Unlock()
	for _, topic := range topics {
		if damaged[topic] {
			continue
		}
		if !slices.Contains(open, topic) {
			if _, err := rm.log.TopicConfig(topic); err == nil {
				return false // exists, but not joined yet
			}
			continue
		}
		i := slices.IndexFunc(info.Topics, func(gt runnel.GroupTopic) bool { return gt.Topic == topic })
		if i < 0 {
			return false
		}
		for _, gp := range info.Topics[i].Partitions {
			// A partition under a dead member's lease stays unowned
			// until the lease runs: whoever takes it then asks for a
			// rebalance.
			if !gp.Owned && gp.Lease == 0 {
				return false
			}
		}
	}
	return true
}

// commit commits offsets (partition → next offset) for a topic through the
// member's Consumer, on the member's goroutine, for the partitions the
// member owns: Kafka answers each partition of a commit on its own, where
// runnel's CommitOffsets writes all or none. It returns the partitions it
// left out, not owned, and the error of the commit of the rest (which
// still fails whole, with ErrNotOwner, if one moved meanwhile).
func (rm *runnelMember) commit(ctx context.Context, topic string, offsets map[int]int64) (notOwned []int, err error) {
	type result struct {
		notOwned []int
		err      error
	}
	done := make(chan result, 1)
	f := func(cons map[string]*runnel.Consumer) {
		c := cons[topic]
		if c == nil {
			done <- result{err: fmt.Errorf("%w: member %s does not consume topic %s", runnel.ErrNotOwner, rm.id, topic)}
			return
		}
		owned, mine := c.Partitions(), map[int]int64{}
		var res result
		for p, off := range offsets {
			if slices.Contains(owned, p) {
				mine[p] = off
			} else {
				res.notOwned = append(res.notOwned, p)
			}
		}
		if len(mine) > 0 {
			res.err = c.CommitOffsets(ctx, mine)
		}
		done <- res
	}
	select {
	case rm.cmds <- f:
	case <-rm.done:
		return nil, runnel.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-done:
		return res.notOwned, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
