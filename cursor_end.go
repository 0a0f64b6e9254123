package runnel

// walkToEnd moves the cursor, on segment base of a partition in dir whose
// file is size bytes, to the end of its good frames, reading headers only:
// from the segment's last index entry when that entry points at a frame of
// its offset, from the start otherwise. It returns what stopped the walk,
// as walk does. Finding the end offset (partReader.seekEnd) and the data
// size of a last segment (dataSize) both go this way, so that both see the
// data end where readers do (cursor.zerosToEnd).
func (c *cursor) walkToEnd(dir string, base, size int64) (segFrame, frameStatus, error) {
	defer func() { c.verify = true }()
	c.verify = false
	c.seek(0, base)
	entries, err := readIndex(segmentPath(dir, base, indexExt), size)
	if err != nil {
		return segFrame{}, frameBad, err
	}
	if n := len(entries); n > 0 {
		c.seek(int64(entries[n-1].pos), base+int64(entries[n-1].rel))
		if _, st, err := c.peek(); err != nil {
			return segFrame{}, frameBad, err
		} else if st != frameOK && st != frameGap {
			c.seek(0, base)
		}
	}
	return c.walk(nil)
}

// dataSize returns how far the data of segment base, in a partition in
// dir, reaches in a file of size bytes: where the walk from its last index
// entry ends at zeros that run to the end of the file (FORMAT.md, Zeros
// ahead of the tail), so the zeros a writer extended the segment by are
// not counted. Anything else after the last good frame (a frame being
// written, damage) takes disk space like data and counts; so does the
// whole file where it cannot be read.
func dataSize(dir string, base, size int64) int64 {
	path := segmentPath(dir, base, logExt)
	f, err := openRegularRead(path)
	if err != nil {
		return size
	}
	defer f.Close()
	c := newCursor(f, path, 0, base)
	end, st, err := c.walkToEnd(dir, base, size)
	if err != nil {
		return size
	}
	return c.dataEnd(end, st, size)
}

// dataEnd returns how many bytes of a file of size bytes count as data
// after a walk stopped at frame f with status st: up to the cursor where
// zeros run to the end of the file (the end of the data), the whole file
// otherwise.
func (c *cursor) dataEnd(f segFrame, st frameStatus, size int64) int64 {
	if st == frameEnd && f.eof {
		return c.pos
	}
	return size
}
