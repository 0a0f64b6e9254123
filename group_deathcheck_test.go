package runnel

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// Idle members of a group share the check for a member that died: one
// of them counts the members every GroupCheckInterval, not every one of
// them, which cost each check a probe of every member's slot (32 idle
// members of one group took half a core: BenchmarkIdleGroupMembers). A
// member that joins and dies is still noticed by all the others.
func TestIdleMembersShareDeathChecks(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, &Options{Durability: Buffered})
	const nparts = 8
	mustCreate(t, l, "jobs", TopicConfig{Partitions: nparts})
	var censuses atomic.Int64
	testHookCensus = func() { censuses.Add(1) }
	t.Cleanup(func() { testHookCensus = nil })
	members := make([]*testMember, 4)
	for i := range members {
		members[i] = startMember(t, l, "jobs", "workers", fmt.Sprint(i), nil)
	}
	waitFor(t, patience, "2/2/2/2", func() bool { return balanced(nparts, members...) })

	const checks = 400
	before, waits := censuses.Load(), l.Stats().PollWaits
	waitFor(t, patience, "the idle members' group checks", func() bool { return l.Stats().PollWaits-waits >= checks })
	if n := censuses.Load() - before; n > checks/2 {
		t.Errorf("%d member counts over %d group checks of idle members; each counted for itself", n, checks)
	}

	victim := startMPMember(t, dir, "jobs", "workers", "victim", "RUNNEL_GM_QUIET=1")
	waitFor(t, patience, "the victim's share", func() bool { return len(victim.ownedNow()) > 0 })
	victim.cmd.Process.Kill()
	<-victim.exited
	waitFor(t, patience, "2/2/2/2 again", func() bool { return balanced(nparts, members...) })

	// One that joins and dies before any shared check: every member had
	// counted it.
	victim = startMPMember(t, dir, "jobs", "workers", "victim", "RUNNEL_GM_QUIET=1")
	victim.cmd.Process.Kill()
	<-victim.exited
	waitFor(t, patience, "2/2/2/2 once more", func() bool { return balanced(nparts, members...) })
}
