package runnel

// lockHelpersIdle reports whether every F_OFD_SETLKW helper of l has
// returned and done what it does with the lock it was granted: the moment
// after which a wrong hand-back would show.
func lockHelpersIdle(l *lockFile) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.helpers == 0
}
