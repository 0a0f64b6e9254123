package runnel

import "testing"

func dumpMissing(t *testing.T, ends []int64, members ...*mpMember) {
	have := map[offsetKey][]string{}
	for _, m := range members {
		for _, k := range m.records() {
			have[k] = append(have[k], m.name)
		}
	}
	for p, end := range ends {
		var missing []int64
		for off := range end {
			if len(have[offsetKey{p, off}]) == 0 {
				missing = append(missing, off)
			}
		}
		if len(missing) > 0 {
			t.Logf("p%d end %d missing %d: first %d last %d", p, end, len(missing), missing[0], missing[len(missing)-1])
		}
	}
	for _, m := range members {
		m.mu.Lock()
		t.Logf("%s owned %v assigned %v stderr %s", m.name, m.owned, m.assigned, m.stderr.String())
		m.mu.Unlock()
	}
}
