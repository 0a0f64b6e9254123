//go:build race

package main

// raceEnabled makes the tests build the binary with the race detector
// when they run under it.
const raceEnabled = true
