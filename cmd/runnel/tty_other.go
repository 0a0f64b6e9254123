//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package main

func isTerminal(fd uintptr) bool { return false }
