package runnel

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A segment is one file of a partition's log, named by the offset of its
// first record. Frames follow each other 8-byte aligned from position 0; a
// committed seal frame ends a segment and names the next one's base. The
// rules for reading them are the cursor's (cursor.go).

const (
	logExt       = ".log"
	indexExt     = ".index"
	timeIndexExt = ".timeindex"
	segNameLen   = 20
)

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// listSegments returns the base offsets of a partition's segments, sorted.
// Files that do not look like segments are ignored.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if len(name) != segNameLen+len(logExt) || !strings.HasSuffix(name, logExt) {
			continue
		}
		if base, ok := segmentBase(name[:segNameLen]); ok {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// segmentBase is the base offset that the first segNameLen bytes of a
// segment file's name spell, as segmentPath writes it: digits only. Any
// other spelling of a number (+0000000000000000003.log) is none of
// runnel's making, and is no segment: taken for one, it would send every
// reader to the file segmentPath names, which is not it, and which a
// reader finding missing takes for one retention is removing, listing
// again for good.
func segmentBase(digits string) (int64, bool) {
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil
}
