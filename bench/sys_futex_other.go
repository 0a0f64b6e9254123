//go:build !linux

package main

// The futex reference exists only on Linux.
var futexSystems []*system
