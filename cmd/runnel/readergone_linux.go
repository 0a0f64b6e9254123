package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// watchReader calls gone, once, when the reading end of f, a pipe, is
// closed: Linux reports POLLERR on the writing end then. A consumer waiting
// for records so learns that "consume -follow | head -1" is over without
// waiting for a record to fail to write. stop ends the watch.
func watchReader(f *os.File, gone func()) (stop func()) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return func() {}
	}
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fds := []unix.PollFd{{Fd: int32(f.Fd())}, {Fd: int32(wake[0]), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil, fds[1].Revents != 0:
				return
			case fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0:
				gone()
				return
			}
		}
	}()
	return func() {
		unix.Close(wake[1])
		<-done
		unix.Close(wake[0])
	}
}
