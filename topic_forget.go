package runnel

import "slices"

// A Log keeps a handle on each topic it has used (Log.topics): partitions
// with their files, mappings and seal checks. When another Log, maybe in
// another process, deletes the topic (or deletes it and creates it anew),
// the handle is stale, and this Log drops and closes it as soon as it
// learns so, not at its next look-up of the name, which may never come: a
// long-running process that touched many short-lived topics would keep
// their descriptors and memory for its whole life. It learns it
//
//   - in each retention pass, background or EnforceRetention, which checks
//     every handle (refreshTopicConfig): this is what finds the topics
//     nobody uses any more, within Options.RetentionInterval;
//   - from a Topics listing that leaves out the name of a handle;
//   - from a look-up of the name (Log.topic: a new producer or consumer,
//     DescribeTopic), which also sees a topic created anew under the name;
//   - from an append or a read that fails because the files are gone or
//     the partitions marked deleted (orGone, finishDeadDelete).
//
// A DeleteTopic in this Log forgets its own handle the same way.
//
// Producers and consumers that hold the handle keep it: its partitions,
// closed with topicDeleted as the reason, fail their sends with
// ErrTopicNotFound, and consumers read through files of their own, whose
// deleted word (or absence) they report so.

// forgetTopic drops t, which the caller found deleted or replaced, from
// the Log's handles and closes it, returning once it is closed (by this
// call or another that took it first). The caller holds none of t's
// locks and is none of its writers: closing waits for their writes.
func (l *Log) forgetTopic(t *topic) {
	done, mine := l.unlistTopic(t)
	switch {
	case mine:
		l.closeForgotten(t, done)
	case done != nil:
		<-done
	}
}

// forgetTopicLater is forgetTopic for callers inside t's own appends and
// file opens (a leader, the writer goroutine, a holder of a partition's
// wmu), which the close waits for: it closes t in a goroutine.
// CloseContext waits for that goroutine.
func (l *Log) forgetTopicLater(t *topic) {
	if done, mine := l.unlistTopic(t); mine {
		go l.closeForgotten(t, done)
	}
}

// unlistTopic takes t out of the Log's handles. mine says the caller is
// to close t (closeForgotten), and done is closed once it is closed; done
// is that of a close under way already when another caller took t out, and
// nil when t was not listed at all (Close or a DeleteTopic took it).
func (l *Log) unlistTopic(t *topic) (done chan struct{}, mine bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if done, ok := l.forgetting[t]; ok {
		return done, false
	}
	if l.topics[t.name] != t {
		return nil, false
	}
	delete(l.topics, t.name)
	if l.forgetting == nil {
		l.forgetting = map[*topic]chan struct{}{}
	}
	done = make(chan struct{})
	l.forgetting[t] = done
	return done, true
}

// closeForgotten closes t, which unlistTopic took out, with the error its
// producers get from now on. What the close meets (a failed sync, say) is
// about files of a topic that is gone, and not reported.
func (l *Log) closeForgotten(t *topic, done chan struct{}) {
	t.close(topicDeleted(t.name))
	l.mu.Lock()
	delete(l.forgetting, t)
	l.mu.Unlock()
	close(done)
}

// forgetUnlisted forgets the handles whose names a listing of the topics
// (sorted) left out, once each is checked stale: a handle loaded after the
// listing is current.
func (l *Log) forgetUnlisted(names []string) {
	l.mu.Lock()
	var unlisted []*topic
	for name, t := range l.topics {
		if _, found := slices.BinarySearch(names, name); !found {
			unlisted = append(unlisted, t)
		}
	}
	l.mu.Unlock()
	for _, t := range unlisted {
		if _, stale, err := l.checkTopic(t); err == nil && stale {
			l.forgetTopic(t)
		}
	}
}

// forgettingNow returns the topics whose close (closeForgotten) is under
// way, and the channels closed when each is done. The caller holds l.mu.
func (l *Log) forgettingNow() (topics []*topic, done []chan struct{}) {
	for t, d := range l.forgetting {
		topics, done = append(topics, t), append(done, d)
	}
	return topics, done
}
