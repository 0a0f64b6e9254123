package kafka

import (
	"bufio"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Credentials are the users a server accepts, for SASL PLAIN and
// SCRAM-SHA-256. Each is kept as SCRAM's salted keys, never as the
// password, and one entry serves both mechanisms.
//
// A credentials file has one user per line; blank lines and lines
// starting with # are ignored. A line is either
//
//	name:password
//
// (the password is salted and hashed when the file is loaded), or the
// stored form that ScramLine writes, which keeps no password on disk:
//
//	name:scram-sha-256:iterations:salt:stored-key:server-key
//
// with the last three in standard base64. Names may not contain ':'.
type Credentials struct {
	users map[string]scramCredential
}

type scramCredential struct {
	iterations int
	salt       []byte
	storedKey  []byte
	serverKey  []byte
}

// scramIterations is the PBKDF2 iteration count for passwords hashed
// here: RFC 7677's minimum, as Kafka's tools default to.
const scramIterations = 4096

// NewCredentials returns an empty set of users.
func NewCredentials() *Credentials { return &Credentials{users: map[string]scramCredential{}} }

// Add adds (or replaces) a user with a password.
func (c *Credentials) Add(name, password string) error {
	if name == "" || strings.ContainsAny(name, ":\n") {
		return fmt.Errorf("%w: user name %q (empty, or has ':')", ErrBadCredentials, name)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	cred, err := deriveScram(password, salt, scramIterations)
	if err != nil {
		return err
	}
	c.users[name] = cred
	return nil
}

// ScramLine returns a credentials-file line for name and password in the
// stored form, with a fresh salt.
func ScramLine(name, password string) (string, error) {
	c := NewCredentials()
	if err := c.Add(name, password); err != nil {
		return "", err
	}
	cred := c.users[name]
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s:scram-sha-256:%d:%s:%s:%s", name, cred.iterations, b64(cred.salt), b64(cred.storedKey), b64(cred.serverKey)), nil
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
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, rest, ok := strings.Cut(text, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: line %d: want name:password or name:scram-sha-256:…", ErrBadCredentials, line)
		}
		if _, dup := c.users[name]; dup {
			return nil, fmt.Errorf("%w: line %d: user %q listed twice", ErrBadCredentials, line, name)
		}
		stored, ok := strings.CutPrefix(rest, "scram-sha-256:")
		if !ok {
			if err := c.Add(name, rest); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadCredentials, line, err)
			}
			continue
		}
		cred, err := parseStored(stored)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadCredentials, line, err)
		}
		c.users[name] = cred
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	if len(c.users) == 0 {
		return nil, fmt.Errorf("%w: no users", ErrBadCredentials)
	}
	return c, nil
}

func parseStored(s string) (scramCredential, error) {
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
	if cred.storedKey, err = dec(parts[2]); err != nil || len(cred.storedKey) != sha256.Size {
		return cred, fmt.Errorf("stored key is not 32 bytes of base64")
	}
	if cred.serverKey, err = dec(parts[3]); err != nil || len(cred.serverKey) != sha256.Size {
		return cred, fmt.Errorf("server key is not 32 bytes of base64")
	}
	return cred, nil
}

// deriveScram computes SCRAM's stored and server keys from a password
// (RFC 5802 §3).
func deriveScram(password string, salt []byte, iterations int) (scramCredential, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return scramCredential{}, err
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return scramCredential{
		iterations: iterations,
		salt:       salt,
		storedKey:  stored[:],
		serverKey:  hmacSHA256(salted, []byte("Server Key")),
	}, nil
}

// checkPassword reports whether password is user's (for PLAIN).
func (c *Credentials) checkPassword(user, password string) bool {
	cred, ok := c.users[user]
	if !ok {
		return false
	}
	got, err := deriveScram(password, cred.salt, cred.iterations)
	return err == nil && subtle.ConstantTimeCompare(got.storedKey, cred.storedKey) == 1
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}
