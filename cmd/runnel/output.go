package main

import (
	"errors"
	"io"
	"sync"
	"syscall"
)

// outputWriter is standard output as commands see it. Most print with
// fmt.Fprint..., which drops write errors, so it keeps the first one:
// a listing cut short by a full disk must not exit 0 as if it were whole.
type outputWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
	return n, err
}

// failed returns the first write error, but not a reader that went away:
// that is how consume | head -1 ends, and other commands die of SIGPIPE
// first.
func (o *outputWriter) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if readerGone(o.err) {
		return nil
	}
	return o.err
}

// readerGone reports whether err is a write to standard output that failed
// because its reader went away (head -1 has its line). For consume, which
// ignores SIGPIPE, that is no failure to report, at the end nor in the
// commit as Close gives up the partitions: the reader took what it wanted,
// and what did not reach it is not committed.
func readerGone(err error) bool { return errors.Is(err, syscall.EPIPE) }
