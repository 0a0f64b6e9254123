package runnel

import "testing"

// .ci/run forces the io_uring backend for one pass of this package but
// has no pass that forces pwrite: BackendAuto is pwrite in every
// durability mode, so the default pass is already the pwrite pass, and a
// forced one ran the same code twice. Should Auto pick io_uring for a
// mode, the tests of that mode would no longer run on pwrite: bring the
// forced pwrite pass back to .ci/run along with that change.
func TestAutoBackendIsPwrite(t *testing.T) {
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		// Open directly: testOptions would put RUNNEL_TEST_BACKEND in
		// place of Auto.
		l, err := Open(t.TempDir(), &Options{Durability: d})
		if err != nil {
			t.Fatalf("Open(%v): %v", d, err)
		}
		got := l.Stats().Backend
		l.Close()
		if got != BackendPwrite {
			t.Errorf("Auto picks %q for %v: .ci/run's default pass no longer tests pwrite there; restore its forced pwrite pass", got, d)
		}
	}
}
