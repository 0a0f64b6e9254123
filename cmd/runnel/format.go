package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Values on the command line and in tables: sizes with units, durations
// with days, times as RFC 3339 or "ago".

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// parseBytes reads a byte count: 1048576, 64MiB, 1GB, 512K (K, M, G, T
// and the -iB forms are powers of 1024; KB, MB, GB, TB of 1000).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok && rest != "" {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || n*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576, 64MiB or 1GB)", s)
	}
	return int64(n * float64(mult)), nil
}

// parseDuration reads a Go duration, with d (24h) and w (7d) accepted too:
// 90s, 36h, 7d, 2w, 1d12h. 0 means no limit.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	invalid := fmt.Errorf("invalid duration %q (want e.g. 90m, 36h or 7d)", s)
	var total time.Duration
	// add adds d to total, failing past the longest duration: wrapped
	// around, 1e6w was a negative duration, and a sum could come back
	// to a short one.
	add := func(d float64) bool {
		if !(d >= 0 && d < float64(math.MaxInt64-total)) { // NaN too
			return false
		}
		total += time.Duration(d)
		return true
	}
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		if i := strings.Index(t, unit.suffix); i > 0 {
			n, err := strconv.ParseFloat(t[:i], 64)
			if err != nil || !add(n*float64(unit.d)) {
				return 0, invalid
			}
			t = t[i+1:]
		}
	}
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || !add(float64(d)) {
			return 0, invalid
		}
	}
	return total, nil
}

// parseTime reads a point in time: RFC 3339 (2024-05-01T12:00:00Z), a
// date (2024-05-01, UTC), or a duration meaning that long ago (15m, 2d).
func parseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339 like 2024-05-01T12:00:00Z, a date, or a duration ago like 15m)", s)
}

// newTable returns a writer that aligns tab-separated columns, two spaces
// apart; Flush writes the table.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// humanBytes formats n in binary units: 512 B, 1.5 KiB, 64.0 MiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// humanDuration formats a retention: 7d, 36h, 90m, or forever for 0.
func humanDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "forever"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// humanRate formats a per-second rate compactly.
func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// unescape reads the backslash escapes of delimiters and format strings:
// \n, \t, \r, \0, \\ and \xHH. Any other escape is an error, not a
// guess.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		b, n, err := escaped(s[i:])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		i += n - 1
	}
	return out, nil
}

// escaped decodes the escape at the start of s (which begins with a
// backslash) and says how many bytes it took.
func escaped(s string) (b byte, n int, err error) {
	if len(s) < 2 {
		return 0, 0, fmt.Errorf("%q ends in a lone backslash (\\\\ for one)", s)
	}
	switch s[1] {
	case 'n':
		return '\n', 2, nil
	case 't':
		return '\t', 2, nil
	case 'r':
		return '\r', 2, nil
	case '0':
		return 0, 2, nil
	case '\\':
		return '\\', 2, nil
	case 'x':
		if len(s) >= 4 {
			if v, err := strconv.ParseUint(s[2:4], 16, 8); err == nil {
				return byte(v), 4, nil
			}
		}
		return 0, 0, fmt.Errorf("invalid escape %q (want \\xHH)", s[:min(len(s), 4)])
	}
	return 0, 0, fmt.Errorf("unknown escape %q (want \\n, \\t, \\r, \\0, \\\\ or \\xHH)", s[:2])
}
