package runnel

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/runnel-log/runnel/internal/names"
)

// partitionDir is partition id's directory in topic directory topicDir,
// named by names.PartitionDir's rule, which partNum reads back.
func partitionDir(topicDir string, id int) string {
	return filepath.Join(topicDir, names.PartitionDir(id))
}

// errPartDirMissing is what is wrong with a partition whose directory is
// gone while its topic is there: removed by hand, or left out of a copy
// or a restore. A DeleteTopic never leaves that: it moves the topic's
// whole directory away at once.
var errPartDirMissing = errors.New("partition directory missing")

// missingPartDir is the damage of partition directory dir being gone, as
// every call that meets it (and Verify) reports it.
func missingPartDir(dir string) *CorruptError {
	return &CorruptError{Path: dir, Pos: -1, Offset: -1, Err: errPartDirMissing}
}

// orMissing is Log.orGone for an error met opening or listing p's files:
// a file missing because the topic was deleted (or deleted and created
// again) is ErrTopicNotFound, and one missing because p's directory is
// gone from the topic that is still there is damage (missingPartDir),
// where it was a plain fs.ErrNotExist naming some file in it.
func (p *partition) orMissing(err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// The directory first, then the topic: a topic that is current after
	// the look had its directory, and so was not deleted, when the look
	// found p's missing.
	if _, serr := os.Lstat(p.dir); errors.Is(serr, fs.ErrNotExist) && p.log.topicCurrent(p.topic) {
		return missingPartDir(p.dir)
	}
	return p.log.orGone(p.topic, err)
}

// segmentBases lists p's segments (listSegments), with orMissing's
// errors.
func (p *partition) segmentBases() ([]int64, error) {
	bases, err := listSegments(p.dir)
	return bases, p.orMissing(err)
}
