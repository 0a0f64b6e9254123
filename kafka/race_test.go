//go:build race

package kafka

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is put back, so a pooled buffer is made again more often.
const raceEnabled = true
