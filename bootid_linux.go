package runnel

import (
	"encoding/hex"
	"os"
	"strings"
)

// readBootID reads the kernel's random id of this boot.
func readBootID() [16]byte {
	var id [16]byte
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(data)), "-", ""))
	if err != nil || len(raw) != len(id) {
		return id
	}
	copy(id[:], raw)
	return id
}
