package kafka

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close, as
	// net/http's is.
	ErrServerClosed = errors.New("kafka: server closed")

	// ErrInvalidOption is returned by NewServer and Serve for an Options
	// field outside its documented range.
	ErrInvalidOption = errInvalidOption

	// ErrBadCredentials is returned by LoadCredentials and
	// ParseCredentials for a credentials file that cannot be used.
	ErrBadCredentials = errors.New("kafka: bad credentials file")
)

// errTooLarge is the cause of a produced batch refused for its size: the
// client gets MESSAGE_TOO_LARGE.
var errTooLarge = errors.New("record batch too large")
