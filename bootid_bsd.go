//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package runnel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// readBootID identifies this boot by the kernel's boot time, which stays
// the same until the machine restarts.
func readBootID() [16]byte {
	var id [16]byte
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return id
	}
	binary.LittleEndian.PutUint64(id[:], uint64(tv.Sec))
	binary.LittleEndian.PutUint64(id[8:], uint64(tv.Usec))
	id[15] |= 0x80 // never all zeros
	return id
}
