package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runnel-log/runnel"
)

// topics delete-records: kafka-delete-records.sh, which moves partitions'
// log start offsets (DeleteRecords).

// deleteRecordsAt is one partition to delete records of: those below
// offset, or every one for runnel.DeleteToEnd.
type deleteRecordsAt struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// valid reports whether d names a topic, a partition from 0 and an
// offset from DeleteToEnd (-1), as the arguments and the JSON file must.
func (d deleteRecordsAt) valid() bool {
	return d.Topic != "" && d.Partition >= 0 && d.Offset >= runnel.DeleteToEnd
}

type jsonDeletedRecords struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Start     int64  `json:"start_offset"`
}

// maxOffsetJSONBytes bounds the -offset-json-file read: far above any
// list of partitions a directory has.
const maxOffsetJSONBytes = 16 << 20

func init() {
	var format, jsonFile string
	register(&command{
		name:    "topics delete-records",
		args:    "TOPIC:PARTITION:OFFSET... [-offset-json-file FILE] [-format text|json]",
		summary: "delete records below an offset, as kafka-delete-records.sh",
		describe: `
Deletes the records of each partition below OFFSET (-1: every record
there is now), as kafka-delete-records.sh --offset-json-file does over
Kafka (DeleteRecords): the partition's start moves up to OFFSET, for
every process's consumers, and is on disk before the command goes on to
the next partition; the start never moves back (an OFFSET at or below it
leaves it). A consumer, or a group whose commit is, below the start
resets as its out-of-range policy says. Prints one line
"TOPIC [PARTITION] start N" each, N the start after the call. An OFFSET
past the partition's end fails the command, as do a topic or partition
there is not; the partitions before it are done.

-offset-json-file reads the partitions from FILE in
kafka-delete-records.sh's form: {"partitions": [{"topic", "partition",
"offset"}], "version": 1}, after those of the arguments.

With -format json: an array of {"topic", "partition", "start_offset"}.`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&jsonFile, "offset-json-file", "", "also delete the partitions and offsets `FILE` lists, as kafka-delete-records.sh reads them")
			outputFlag(fs, &format)
		},
		nargs:    [2]int{0, manyArgs},
		complete: []argKind{argTopic},
		moreArgs: argTopic,
		run: func(ctx context.Context, c *cli, fs *pflag.FlagSet, args []string) error {
			todo, err := deleteRecordsArgs(args)
			if err != nil {
				return err
			}
			if jsonFile != "" {
				more, err := readOffsetJSON(jsonFile)
				if err != nil {
					return err
				}
				todo = append(todo, more...)
			}
			if len(todo) == 0 {
				return usagef("nothing to delete: give TOPIC:PARTITION:OFFSET or -offset-json-file")
			}
			return c.withLog(func(l *runnel.Log) error {
				out := []jsonDeletedRecords{}
				defer func() {
					if format == "json" {
						writeJSON(c.stdout, out)
					}
				}()
				for _, d := range todo {
					start, err := l.DeleteRecords(ctx, d.Topic, d.Partition, d.Offset)
					if err != nil {
						return fmt.Errorf("delete records of %s [%d] below %d: %w", d.Topic, d.Partition, d.Offset, err)
					}
					out = append(out, jsonDeletedRecords{Topic: d.Topic, Partition: d.Partition, Start: start})
					if format != "json" {
						fmt.Fprintf(c.stdout, "%s [%d] start %d\n", d.Topic, d.Partition, start)
					}
				}
				return nil
			})
		},
	})
}

// deleteRecordsArgs reads TOPIC:PARTITION:OFFSET arguments.
func deleteRecordsArgs(args []string) ([]deleteRecordsAt, error) {
	var todo []deleteRecordsAt
	for _, arg := range args {
		parts := strings.Split(arg, ":")
		var d deleteRecordsAt
		var err error
		if len(parts) == 3 && parts[0] != "" {
			d.Topic = parts[0]
			d.Partition, err = strconv.Atoi(parts[1])
			if err == nil {
				d.Offset, err = strconv.ParseInt(parts[2], 10, 64)
			}
		}
		if err != nil || !d.valid() {
			return nil, usagef("%q: want TOPIC:PARTITION:OFFSET, OFFSET -1 for every record", arg)
		}
		todo = append(todo, d)
	}
	return todo, nil
}

// readOffsetJSON reads kafka-delete-records.sh's offset JSON file.
func readOffsetJSON(path string) ([]deleteRecordsAt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxOffsetJSONBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("-offset-json-file %s: %w", path, err)
	case len(data) > maxOffsetJSONBytes:
		return nil, usagef("-offset-json-file %s: more than %d bytes", path, maxOffsetJSONBytes)
	}
	// Unmarshal, not a Decoder's first value: what follows the document
	// (a second one, garbage) is refused, where the Decoder left its
	// deletes undone without a word.
	var doc struct {
		Partitions []deleteRecordsAt `json:"partitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, usagef("-offset-json-file %s%s: %v", path, jsonErrorAt(err), err)
	}
	for _, d := range doc.Partitions {
		if !d.valid() {
			return nil, usagef("-offset-json-file %s: %+v: want a topic, a partition from 0 and an offset from -1", path, d)
		}
	}
	return doc.Partitions, nil
}

// jsonErrorAt is " at byte N" for a JSON error that says where in the
// input it is, else "".
func jsonErrorAt(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(" at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf(" at byte %d", te.Offset)
	}
	return ""
}
