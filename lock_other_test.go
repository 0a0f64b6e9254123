//go:build !linux

package runnel

// lockHelpersIdle reports whether every F_SETLKW helper for l's file in
// this process has returned and done what it does with the lock it was
// granted: the moment after which a wrong hand-back would show.
func lockHelpersIdle(l *lockFile) bool {
	l.ino.mu.Lock()
	defer l.ino.mu.Unlock()
	for _, b := range l.ino.bytes {
		if b.helper {
			return false
		}
	}
	return true
}
