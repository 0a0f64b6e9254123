//go:build !linux

package main

import "os"

// watchReader does nothing here: a consumer learns that the reader of its
// output went away when its next write fails.
func watchReader(f *os.File, gone func()) (stop func()) { return func() {} }
