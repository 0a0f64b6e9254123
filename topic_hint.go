package runnel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A growth (AlterTopic) is written to topic.json, which other processes
// read only now and then: at a look-up of the name, or their retention
// check. Their key-hash Producers and Consumers of every partition would
// go on with the old count until then. So AlterTopic also stores the new
// count in a word of partition 0's partition.meta (byte 224,
// docs/FORMAT.md), which every process maps shared, and wakes it: a
// Producer loads it at each Send, a Consumer at each look and sleeps on
// it, and a value other than the last one seen sends the handle to
// topic.json, the only source of the count. The word is a hint: whatever
// it holds (zero, from a runnel that never writes it, or garbage) costs at
// most one read of topic.json per change of its value, and never gives
// the handle a partition topic.json does not list. (Garbage that happens
// to equal a later growth's count hides that growth until the handle's
// next read of topic.json, as without the word.)

// partsHint is a topic handle's view of the published count.
type partsHint struct {
	m    *metaMap       // partition 0's partition.meta, mapped without a descriptor
	word *atomic.Uint32 // in m
	// seen is the word's value the handle last read topic.json for (at
	// first, the count the handle had then); mu serializes those reads.
	seen atomic.Uint32
	mu   sync.Mutex
}

// watchGrowth maps t's published partition count for t's Producers and
// Consumers, once per handle, and returns it; nil if it cannot be mapped
// (the topic is gone, or its partition.meta may only be read here and is
// short, or t is closed), and then the handle learns of growth as it did
// without it. The mapping holds no descriptor, so it counts in no budget
// of open files. A Send or Poll of a Producer or Consumer of t, which
// keeps t, may load the word at any time, even racing a Close: so the
// mapping lets go of the file when t closes (dropHint), but its memory is
// unmapped only once nothing refers to t.
func (l *Log) watchGrowth(t *topic) *partsHint {
	if h := t.hint.Load(); h != nil {
		return h
	}
	t.hintMu.Lock()
	defer t.hintMu.Unlock()
	if h := t.hint.Load(); h != nil || t.hintDropped {
		return h
	}
	m, err := t.parts()[0].openShared()
	if err != nil {
		return nil
	}
	if m.private {
		m.close()
		return nil // a copy: no store would ever reach it
	}
	m.detach()
	h := &partsHint{m: m, word: m.u32(metaPartsOff)}
	h.seen.Store(uint32(len(t.parts())))
	runtime.AddCleanup(t, func(m *metaMap) { m.close() }, m)
	t.hint.Store(h)
	return h
}

// dropHint lets go of the partition.meta behind t's published count as t
// closes (the Log closing, the topic deleted), so that no file of a
// closed Log stays referenced (a mount could not be unmounted, a deleted
// file's space not freed) until the garbage collector finds t. The page is
// replaced in place by a private zero page, which a load racing the close
// reads as "says nothing", never unmapped under it.
func (t *topic) dropHint() error {
	t.hintMu.Lock()
	defer t.hintMu.Unlock()
	t.hintDropped = true
	if h := t.hint.Load(); h != nil {
		return h.m.blank()
	}
	return nil
}

// followHint gives t the partitions another process added, if the
// published count moved since t last looked.
func (l *Log) followHint(t *topic) {
	if h := t.hintMoved(); h != nil {
		l.readGrownCount(t, h)
	}
}

// hintMoved returns t's hint if the published count moved since t last
// looked, else nil: three loads, inlined where a Send calls it.
func (t *topic) hintMoved() *partsHint {
	if h := t.hint.Load(); h != nil && h.moved() {
		return h
	}
	return nil
}

// moved reports whether the word holds a count other than the one last
// seen. Zero is never published: a partition.meta that a runnel without
// the word made, or a Backup wrote, says nothing.
func (h *partsHint) moved() bool {
	w := h.word.Load()
	return w != h.seen.Load() && w != 0
}

// readGrownCount reads topic.json for t, whose published count moved.
// seen takes the word as loaded before the read, whatever the read found,
// so that a word that says what topic.json does not (garbage) costs one
// read, and a growth published during the read another.
func (l *Log) readGrownCount(t *topic, h *partsHint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.word.Load()
	if w == h.seen.Load() {
		return // another goroutine read it
	}
	l.refreshPartitions(t)
	h.seen.Store(w)
}

// publishGrowth stores topic name's new partition count n in partition
// 0's partition.meta and wakes the Consumers asleep on it. AlterTopic
// calls it under the topic's admin lock, once topic.json has n: a process
// that sees n there reads topic.json and finds it. The growth is done
// whether or not this works, so a failure is only logged: other processes
// then see the growth at their next read of topic.json, as before.
func (l *Log) publishGrowth(name string, n int) {
	m, err := openMeta(partitionDir(l.topicDir(name), 0))
	if err == nil && !m.shared() {
		err = errMetaReadOnly
	}
	if err != nil {
		m.close()
		l.opts.Logger.Warn("runnel: cannot publish a topic's partition count; other processes see it at their next read of topic.json", "topic", name, "partitions", n, "err", err)
		return
	}
	w := m.u32(metaPartsOff)
	w.Store(uint32(n))
	wakeAll(w)
	m.close()
}
