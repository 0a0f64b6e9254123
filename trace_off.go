//go:build !runneltrace

package runnel

import "github.com/runnel-log/runnel/internal/tracefmt"

// The default build's trace points: empty, so the compiler inlines them
// away and they cost nothing. The tracing build's are in trace_on.go.

func tracePoint(tracefmt.Step) {}

func traceWrite() {}
