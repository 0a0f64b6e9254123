package names

import "testing"

func TestPartitionFromDir(t *testing.T) {
	for _, p := range []int{0, 5, 10, 1 << 20} {
		if got, ok := PartitionFromDir(PartitionDir(p)); !ok || got != p {
			t.Errorf("PartitionFromDir(PartitionDir(%d)) = %d, %v", p, got, ok)
		}
	}
	for _, name := range []string{"05", "00", "+5", "-5", "-0", " 5", "5 ", "5x", "0x5", "", "1e3", "99999999999999999999"} {
		if p, ok := PartitionFromDir(name); ok {
			t.Errorf("PartitionFromDir(%q) = %d, true; no partition's directory", name, p)
		}
	}
}
