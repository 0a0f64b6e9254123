package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// shownName is a group or member name as text output prints it: as it
// is, unless it holds a character that is not printable (a tab, a
// newline, a terminal's escape sequence), bytes that are not UTF-8 (a
// Kafka client id, a member's name, is any bytes, and a lone 0x9b is an
// 8-bit CSI to some terminals), or begins with a double quote; then as a
// Go-quoted string. A group name may be any string a Kafka
// client sends, and printed raw such a name could split a listing's line,
// shift a table's columns or rewrite what the terminal shows. JSON output
// carries every name exactly.
func shownName(name string) string {
	if strings.HasPrefix(name, `"`) || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(name)
	}
	return name
}
