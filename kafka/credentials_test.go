package kafka

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialsFileLongLine: a line longer than the credentials reader
// takes is refused with the file and the line named: the error said only
// "bufio.Scanner: token too long".
func TestCredentialsFileLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("alice:secret\nbob:"+strings.Repeat("x", 100<<10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCredentials(path)
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2:") {
		t.Errorf("LoadCredentials: %v, want an error naming %s and its line 2", err, path)
	}
}
