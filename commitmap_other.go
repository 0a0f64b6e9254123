//go:build !linux

package runnel

// Off Linux the pwrite backend writes frames and commit bytes with pwrite:
// not every Unix keeps a shared mapping and read(2) of a file coherent.

type commitMap struct{}

func newCommitMap(fd int) *commitMap           { return nil }
func (c *commitMap) commit(int64, []byte) bool { return false }
func (c *commitMap) write(int64, []byte) bool  { return false }
func (c *commitMap) copies(int) bool           { return false }
func (c *commitMap) setLimit(int64)            {}
func (c *commitMap) close()                    {}
