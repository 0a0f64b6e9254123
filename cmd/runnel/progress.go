package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a progress bar on standard error when it is a terminal,
// and nothing otherwise. It appears only once an operation has run for a
// moment, so quick ones leave no trace, and it erases itself at the end.
type progress struct {
	w       io.Writer
	label   string
	total   int64
	bytes   bool // done and total are bytes, not records
	on      bool
	start   time.Time
	last    time.Time
	shown   bool
	lastLen int
}

const (
	progressDelay  = 300 * time.Millisecond
	progressPeriod = 100 * time.Millisecond
	progressWidth  = 30
)

// newProgress returns a bar for stderr, on only if stderr is a terminal
// (and, when quietOnTTYStdout is set, standard output is not: a bar would
// mix with the output).
func newProgress(label string, total int64, bytes, quietOnTTYStdout bool) *progress {
	on := isTerminal(os.Stderr.Fd()) && !(quietOnTTYStdout && isTerminal(os.Stdout.Fd()))
	return &progress{w: os.Stderr, label: label, total: total, bytes: bytes, on: on, start: time.Now()}
}

// update shows done out of the total, at most ten times a second.
func (p *progress) update(done int64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < progressDelay || now.Sub(p.last) < progressPeriod {
		return
	}
	p.last = now
	p.shown = true
	frac := 0.0
	if p.total > 0 {
		frac = min(1, max(0, float64(done)/float64(p.total)))
	}
	fill := int(frac * progressWidth)
	bar := strings.Repeat("=", fill)
	if fill < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-fill-1)
	}
	amount := fmt.Sprintf("%d/%d", done, p.total)
	if p.bytes {
		amount = humanBytes(done) + " / " + humanBytes(p.total)
	}
	line := fmt.Sprintf("%s [%s] %3.0f%%  %s  %s", p.label, bar, frac*100, amount, now.Sub(p.start).Round(time.Second))
	pad := max(0, p.lastLen-len(line))
	p.lastLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// done erases the bar.
func (p *progress) done() {
	if p.shown {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.shown = false
	}
}
