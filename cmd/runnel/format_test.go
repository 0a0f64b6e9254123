package main

import (
	"testing"
	"time"
)

// TestParseDurationBounds: a duration past the longest one (about 292
// years) is invalid: wrapped around, -retention 1e6w was refused as a
// "negative retention", and a sum of parts could come back to a short
// retention that removed records at once.
func TestParseDurationBounds(t *testing.T) {
	for _, s := range []string{"1e6w", "NaNd", "Infw", "15000w2000d2562047h", "-1d", "-1h"} {
		if d, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, d)
		}
	}
	for s, want := range map[string]time.Duration{"2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0": 0, "90s": 90 * time.Second} {
		if d, err := parseDuration(s); d != want || err != nil {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, d, err, want)
		}
	}
}
