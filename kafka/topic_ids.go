package kafka

import (
	"encoding/hex"

	"github.com/runnel-log/runnel"
)

// Topic ids: Kafka's topic id is the 16 bytes of a UUID; runnel's is 128
// random bits kept in hex in the topic's topic.json, made anew when a
// name is deleted and created again. The server reports the one as the
// other (Metadata v10+, CreateTopics v7), so clients and Kafka UIs see a
// topic re-created under its name as another topic, as with Kafka. A
// topic made before runnel kept ids has none, and is reported with the
// zero id, which Kafka uses for "no id". Requests still address topics by
// name: every API stays below the versions that take ids alone (see
// metadata.go), but for Metadata v12's topics named by id, which the
// server looks up.

// kafkaTopicID is runnel topic id id as Kafka's 16 bytes; zero when the
// topic has none (or its file holds something else, which runnel never
// writes).
func kafkaTopicID(id string) [16]byte {
	var b [16]byte
	if len(id) != 2*len(b) {
		return [16]byte{}
	}
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return [16]byte{}
	}
	return b
}

// topicNamed finds the topic whose Kafka topic id is id, by reading every
// topic's file: requests by id are rare (an admin's describe by id), and
// the directory, which other processes change, is the only index.
func topicNamed(l *runnel.Log, id [16]byte) (string, bool) {
	if id == ([16]byte{}) {
		return "", false
	}
	names, err := l.Topics()
	if err != nil {
		return "", false
	}
	for _, name := range names {
		if tid, err := l.TopicID(name); err == nil && kafkaTopicID(tid) == id {
			return name, true
		}
	}
	return "", false
}
