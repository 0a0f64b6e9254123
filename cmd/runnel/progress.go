package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress draws a progress bar on standard error when it is a terminal,
// and nothing otherwise. It appears only once an operation has run for a
// moment, so quick ones leave no trace, fits the terminal's width (a
// wrapped line could not be redrawn in place), and erases itself at the
// end.
type progress struct {
	w       io.Writer
	fd      int
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

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// newProgress returns a bar for stderr, on only if stderr is a terminal
// (and, when quietOnTTYStdout is set, standard output is not: a bar would
// mix with the output).
func newProgress(label string, total int64, bytes, quietOnTTYStdout bool) *progress {
	on := isTerminal(os.Stderr) && !(quietOnTTYStdout && isTerminal(os.Stdout))
	return &progress{w: os.Stderr, fd: int(os.Stderr.Fd()), label: label, total: total, bytes: bytes, on: on, start: time.Now()}
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
	line := p.line(done, now.Sub(p.start))
	if width, _, err := term.GetSize(p.fd); err == nil && width > 1 && len(line) >= width {
		line = line[:width-1]
	}
	pad := max(0, p.lastLen-len(line))
	p.lastLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// line is the bar's text: label, bar, percentage, amount, rate, time.
func (p *progress) line(done int64, elapsed time.Duration) string {
	frac := 0.0
	if p.total > 0 {
		frac = min(1, max(0, float64(done)/float64(p.total)))
	}
	fill := int(frac * progressWidth)
	bar := strings.Repeat("=", fill)
	if fill < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-fill-1)
	}
	rate := float64(done) / elapsed.Seconds()
	amount := fmt.Sprintf("%d/%d  %s/s", done, p.total, humanRate(rate))
	if p.bytes {
		amount = fmt.Sprintf("%s / %s  %s/s", humanBytes(done), humanBytes(p.total), humanBytes(int64(rate)))
	}
	when := elapsed.Round(time.Second).String()
	if rate > 0 && done < p.total {
		when += fmt.Sprintf(", %s left", time.Duration(float64(p.total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	return fmt.Sprintf("%s [%s] %3.0f%%  %s  %s", p.label, bar, frac*100, amount, when)
}

// done erases the bar.
func (p *progress) done() {
	if p.shown {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.shown = false
	}
}
