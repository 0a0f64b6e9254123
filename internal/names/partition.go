package names

import "strconv"

// A partition's directory in its topic's directory is named by the
// partition's number in decimal, with no sign and no leading zero:
// PartitionDir makes the name, and PartitionFromDir reads back only
// names PartitionDir makes, so that one directory is never two
// partitions' ("5" and "05"), and a stray "05", "+5" or " 5" is no
// partition's. The producer journals of the Kafka server name their
// partitions' directories alike.

// PartitionDir returns the name of partition p's directory.
func PartitionDir(p int) string { return strconv.Itoa(p) }

// PartitionFromDir returns the partition whose directory is named name,
// and false for a name PartitionDir makes for none.
func PartitionFromDir(name string) (int, bool) {
	p, err := strconv.Atoi(name)
	if err != nil || p < 0 || PartitionDir(p) != name {
		return 0, false
	}
	return p, true
}
