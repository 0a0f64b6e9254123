package kafka

import (
	"bufio"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"
)

// Credentials are the users a server accepts, for SASL PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512. Each is kept as SCRAM's salted keys,
// one set per SCRAM hash, never as the password; PLAIN checks the
// password against either.
//
// A credentials file has one user per line; blank lines and lines
// starting with # are ignored, and so are blanks at either end of a
// line (an editor's trailing spaces), so a password cannot end with one.
// A line is either
//
//	name:password
//
// (the password is salted and hashed, for both SCRAM hashes, when the
// file is loaded), or the stored form that ScramLine writes, which keeps
// no password on disk, one line per hash:
//
//	name:scram-sha-256:iterations:salt:stored-key:server-key
//	name:scram-sha-512:iterations:salt:stored-key:server-key
//
// with the last three in standard base64. A user with only the first can
// use PLAIN and SCRAM-SHA-256. Names may not contain ':'. A line is at
// most 64 KiB (bufio.MaxScanTokenSize).
type Credentials struct {
	users map[string]map[string]scramCredential // name → SCRAM mechanism → keys
}

type scramCredential struct {
	iterations int
	salt       []byte
	storedKey  []byte
	serverKey  []byte
}

// scramHash is one SCRAM mechanism: its SASL name, its name in the
// credentials file, and its hash.
type scramHash struct {
	mech string
	tag  string
	new  func() hash.Hash
	size int
}

var scramHashes = []scramHash{
	{mechScram256, "scram-sha-256", sha256.New, sha256.Size},
	{mechScram512, "scram-sha-512", sha512.New, sha512.Size},
}

// scramHashFor returns the hash of a SCRAM mechanism, or nil.
func scramHashFor(mech string) *scramHash {
	for i := range scramHashes {
		if scramHashes[i].mech == mech {
			return &scramHashes[i]
		}
	}
	return nil
}

// scramIterations is the PBKDF2 iteration count for passwords hashed
// here: RFC 7677's minimum, as Kafka's tools default to.
const scramIterations = 4096

// NewCredentials returns an empty set of users.
func NewCredentials() *Credentials {
	return &Credentials{users: map[string]map[string]scramCredential{}}
}

// Add adds (or replaces) a user with a password, for every mechanism.
func (c *Credentials) Add(name, password string) error {
	if name == "" || strings.ContainsAny(name, ":\n") {
		return fmt.Errorf("%w: user name %q (empty, or has ':')", ErrBadCredentials, name)
	}
	creds := map[string]scramCredential{}
	for i := range scramHashes {
		salt := make([]byte, 16)
		rand.Read(salt)
		cred, err := deriveScram(&scramHashes[i], password, salt, scramIterations)
		if err != nil {
			return err
		}
		creds[scramHashes[i].mech] = cred
	}
	c.users[name] = creds
	return nil
}

// ScramLine returns the credentials-file lines for name and password in
// the stored form, one per SCRAM hash (joined by a newline), each with a
// fresh salt.
func ScramLine(name, password string) (string, error) {
	c := NewCredentials()
	if err := c.Add(name, password); err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	var lines []string
	for _, h := range scramHashes {
		cred := c.users[name][h.mech]
		lines = append(lines, fmt.Sprintf("%s:%s:%d:%s:%s:%s", name, h.tag, cred.iterations, b64(cred.salt), b64(cred.storedKey), b64(cred.serverKey)))
	}
	return strings.Join(lines, "\n"), nil
}

// LoadCredentials reads a credentials file.
func LoadCredentials(path string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	defer f.Close()
	c, err := ParseCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials reads credentials in the file format.
func ParseCredentials(r io.Reader) (*Credentials, error) {
	c := NewCredentials()
	plain := map[string]bool{} // users given by password: every hash
	sc := bufio.NewScanner(r)
	line := 1
	for ; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, rest, ok := strings.Cut(text, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: line %d: want name:password or name:scram-sha-256:…", ErrBadCredentials, line)
		}
		h, stored := storedHash(rest)
		if h == nil {
			if _, dup := c.users[name]; dup {
				return nil, fmt.Errorf("%w: line %d: user %q listed twice", ErrBadCredentials, line, name)
			}
			if err := c.Add(name, rest); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadCredentials, line, err)
			}
			plain[name] = true
			continue
		}
		if _, dup := c.users[name][h.mech]; dup || plain[name] {
			return nil, fmt.Errorf("%w: line %d: user %q listed twice for %s", ErrBadCredentials, line, name, h.tag)
		}
		cred, err := parseStored(h, stored)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadCredentials, line, err)
		}
		if c.users[name] == nil {
			c.users[name] = map[string]scramCredential{}
		}
		c.users[name][h.mech] = cred
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadCredentials, line, bufio.MaxScanTokenSize)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	if len(c.users) == 0 {
		return nil, fmt.Errorf("%w: no users", ErrBadCredentials)
	}
	return c, nil
}

// storedHash tells a stored line ("scram-sha-256:…") from a password:
// it returns the hash and the rest, or nil.
func storedHash(rest string) (*scramHash, string) {
	for i, h := range scramHashes {
		if stored, ok := strings.CutPrefix(rest, h.tag+":"); ok {
			return &scramHashes[i], stored
		}
	}
	return nil, ""
}

func parseStored(h *scramHash, s string) (scramCredential, error) {
	var cred scramCredential
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return cred, fmt.Errorf("want iterations:salt:stored-key:server-key")
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < scramIterations || n > 1<<20 {
		return cred, fmt.Errorf("iterations %q (want %d to %d)", parts[0], scramIterations, 1<<20)
	}
	cred.iterations = n
	dec := base64.StdEncoding.DecodeString
	if cred.salt, err = dec(parts[1]); err != nil || len(cred.salt) == 0 {
		return cred, fmt.Errorf("salt is not base64")
	}
	if cred.storedKey, err = dec(parts[2]); err != nil || len(cred.storedKey) != h.size {
		return cred, fmt.Errorf("stored key is not %d bytes of base64", h.size)
	}
	if cred.serverKey, err = dec(parts[3]); err != nil || len(cred.serverKey) != h.size {
		return cred, fmt.Errorf("server key is not %d bytes of base64", h.size)
	}
	return cred, nil
}

// deriveScram computes SCRAM's stored and server keys from a password
// (RFC 5802 §3).
func deriveScram(h *scramHash, password string, salt []byte, iterations int) (scramCredential, error) {
	salted, err := pbkdf2.Key(h.new, password, salt, iterations, h.size)
	if err != nil {
		return scramCredential{}, err
	}
	return scramCredential{
		iterations: iterations,
		salt:       salt,
		storedKey:  h.sum(h.hmac(salted, []byte("Client Key"))),
		serverKey:  h.hmac(salted, []byte("Server Key")),
	}, nil
}

// checkPassword reports whether password is user's (for PLAIN), against
// the keys of the first SCRAM hash the user has.
func (c *Credentials) checkPassword(user, password string) bool {
	for i, h := range scramHashes {
		cred, ok := c.users[user][h.mech]
		if !ok {
			continue
		}
		got, err := deriveScram(&scramHashes[i], password, cred.salt, cred.iterations)
		return err == nil && subtle.ConstantTimeCompare(got.storedKey, cred.storedKey) == 1
	}
	return false
}

func (h *scramHash) hmac(key, msg []byte) []byte {
	m := hmac.New(h.new, key)
	m.Write(msg)
	return m.Sum(nil)
}

func (h *scramHash) sum(b []byte) []byte {
	d := h.new()
	d.Write(b)
	return d.Sum(nil)
}
