package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/runnel-log/runnel"
)

// The topics consume reads: its arguments (and -t's), of which those that
// begin with ^ are regular expressions, as kcat -G takes them (^orders\.):
// no topic name holds a ^.

func isTopicPattern(arg string) bool { return strings.HasPrefix(arg, "^") }

// checkTopicArgs refuses a topic named twice and a pattern that does not
// compile, before the log is opened.
func checkTopicArgs(args []string) error {
	for i, arg := range args {
		if slices.Contains(args[:i], arg) {
			return usagef("topic %q given twice", arg)
		}
		if isTopicPattern(arg) {
			if _, err := regexp.Compile(arg); err != nil {
				return usagef("%v", err)
			}
		}
	}
	return nil
}

// expandTopics returns the topics args name, each once, in the order
// given; a pattern stands for the topics whose names it matches, in name
// order, and fails if there are none. The topics are those there are
// now: one created later is not read, even with -follow.
func expandTopics(l *runnel.Log, args []string) ([]string, error) {
	var all, topics []string
	for _, arg := range args {
		if !isTopicPattern(arg) {
			if !slices.Contains(topics, arg) {
				topics = append(topics, arg)
			}
			continue
		}
		if all == nil {
			var err error
			if all, err = l.Topics(); err != nil {
				return nil, err
			}
			slices.Sort(all)
		}
		re := regexp.MustCompile(arg) // checkTopicArgs compiled it
		matched := false
		for _, topic := range all {
			if re.MatchString(topic) {
				matched = true
				if !slices.Contains(topics, topic) {
					topics = append(topics, topic)
				}
			}
		}
		if !matched {
			return nil, fmt.Errorf("no topic matches %q", arg)
		}
	}
	return topics, nil
}
