package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/runnel-log/runnel"
)

// How consume prints a record: its value (with -key-sep, its key first),
// a JSON object, or a kcat format string. value and key-sep are format
// strings too ("%s\n", "%k:%s\n"), so one printer does all but JSON.

// formatTokens are the % tokens of -format, as kcat has them.
const formatTokens = `%t topic, %p partition, %o offset, %k key, %s value, %h headers
(key=value,..., key=NULL for one without a value), %T timestamp in
milliseconds, %K and %S key and value lengths (-1 for none), %R the
value's length as 4 bytes, big-endian (to frame binary values), %% a
percent sign`

// piece is a literal run of bytes (field 0) or one % token.
type piece struct {
	lit   []byte
	field byte
}

// recordFormat is a compiled format string.
type recordFormat []piece

// parseFormat compiles a kcat format string: % tokens and backslash
// escapes (\n, \t, ...).
func parseFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b, n, err := escaped(s[i:])
			if err != nil {
				return nil, err
			}
			lit = append(lit, b)
			i += n - 1
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q ends in a lone %% (%%%% for one)", s)
			}
			i++
			switch t := s[i]; t {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 's', 'h', 'T', 'K', 'S', 'R':
				if len(lit) > 0 {
					f = append(f, piece{lit: lit})
					lit = nil
				}
				f = append(f, piece{field: t})
			default:
				return nil, fmt.Errorf("unknown token %%%c in format %q (tokens: %s)", t, s, strings.Join(strings.Fields(formatTokens), " "))
			}
		default:
			lit = append(lit, s[i])
		}
	}
	if len(lit) > 0 {
		f = append(f, piece{lit: lit})
	}
	return f, nil
}

// valueFormat is the default output: the value, preceded by the key and
// keySep when keySep is given, and followed by recordSep.
func valueFormat(keySep, recordSep []byte) recordFormat {
	var f recordFormat
	if keySep != nil {
		f = append(f, piece{field: 'k'}, piece{lit: keySep})
	}
	return append(f, piece{field: 's'}, piece{lit: recordSep})
}

// nullHeader is what %h prints for a header without a value.
var nullHeader = []byte("NULL")

// write prints r to w, a missing key or value as null (kcat's -Z NULL,
// else nothing); w's error is sticky, so the caller checks it once.
func (f recordFormat) write(w *bufio.Writer, topic string, r runnel.Record, null []byte) {
	var num [20]byte
	for _, p := range f {
		switch p.field {
		case 0:
			w.Write(p.lit)
		case 't':
			w.WriteString(topic)
		case 'p':
			w.Write(strconv.AppendInt(num[:0], int64(r.Partition), 10))
		case 'o':
			w.Write(strconv.AppendInt(num[:0], r.Offset, 10))
		case 'k':
			w.Write(orNull(r.Key, null))
		case 's':
			w.Write(orNull(r.Value, null))
		case 'T':
			w.Write(strconv.AppendInt(num[:0], r.Time.UnixMilli(), 10))
		case 'K':
			w.Write(strconv.AppendInt(num[:0], length(r.Key), 10))
		case 'S':
			w.Write(strconv.AppendInt(num[:0], length(r.Value), 10))
		case 'R':
			w.Write(binary.BigEndian.AppendUint32(num[:0], uint32(int32(length(r.Value)))))
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(h.Key)
				w.WriteByte('=')
				// NULL with -Z or without, as kcat's %h: KEY= is
				// the empty value's.
				w.Write(orNull(h.Value, nullHeader))
			}
		}
	}
}

// orNull is b, or null if b is nil (no key, no value).
func orNull(b, null []byte) []byte {
	if b == nil {
		return null
	}
	return b
}

// length is len(b), or -1 for nil: kcat's "no key".
func length(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

// printer prints records in the format consume was asked for.
type printer struct {
	out    *bufio.Writer
	topic  string
	null   []byte                          // printed for a missing key or value: -Z's NULL, else nothing
	format recordFormat                    // nil for JSON
	enc    *json.Encoder                   // for JSON
	json   func(string, runnel.Record) any // for JSON: -format json's object, or -J's
	// With -J -D, enc encodes into jsonBuf, and jsonEnd replaces the
	// newline it ends each object with.
	jsonEnd []byte
	jsonBuf bytes.Buffer
}

func (p *printer) print(r runnel.Record) error {
	switch {
	case p.enc != nil && p.jsonEnd != nil:
		p.jsonBuf.Reset()
		if err := p.enc.Encode(p.json(p.topic, r)); err != nil {
			return err
		}
		p.out.Write(bytes.TrimSuffix(p.jsonBuf.Bytes(), []byte("\n")))
		p.out.Write(p.jsonEnd)
		_, err := p.out.Write(nil) // bufio's sticky error, if a write failed
		return err
	case p.enc != nil:
		return p.enc.Encode(p.json(p.topic, r))
	}
	p.format.write(p.out, p.topic, r, p.null)
	_, err := p.out.Write(nil) // bufio's sticky error, if a write failed
	return err
}

// formatFlag is consume's -format: value, json, or a format string.
// Checking it while the flags are parsed makes a bad one a usage error.
type formatFlag struct{ value *string }

func (f formatFlag) String() string { return *f.value }
func (f formatFlag) Type() string   { return "FORMAT" }

func (f formatFlag) Set(s string) error {
	if s != "value" && s != "json" {
		if !strings.Contains(s, "%") {
			return fmt.Errorf("want value, json or a format with %% tokens, such as '%%k=%%s\\n'")
		}
		if _, err := parseFormat(s); err != nil {
			return err
		}
	}
	*f.value = s
	return nil
}

func (f formatFlag) Choices() []string { return []string{"value", "json"} }

// output is consume's standard output, which the topics of a run share:
// read one after the other, or with -follow side by side, each by a
// goroutine of its own. -n's count is of all of them.
type output struct {
	mu         sync.Mutex
	w          *bufio.Writer
	unbuffered bool  // -u: each record written out as it is printed
	count      int64 // -n: stop after this many records; 0 for no limit
	printed    int64
}

// print prints r with p, unless the count is reached, and reports
// whether it did.
func (o *output) print(p *printer, r runnel.Record) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.count > 0 && o.printed >= o.count {
		return false, nil
	}
	if err := p.print(r); err != nil {
		return false, err
	}
	o.printed++
	if o.unbuffered {
		return true, o.w.Flush()
	}
	return true, nil
}

// reached reports whether the count has been printed.
func (o *output) reached() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count > 0 && o.printed >= o.count
}

// flush writes out what is buffered.
func (o *output) flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Flush()
}
