package main

import (
	"strconv"
	"strings"
	"unicode"
)

// shownName is a group or member name as text output prints it: as it
// is, unless it holds a character that is not printable (a tab, a
// newline, a terminal's escape sequence) or begins with a double quote;
// then as a Go-quoted string. A group name may be any string a Kafka
// client sends, and printed raw such a name could split a listing's line,
// shift a table's columns or rewrite what the terminal shows. JSON output
// carries every name exactly.
func shownName(name string) string {
	if strings.HasPrefix(name, `"`) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(name)
	}
	return name
}
