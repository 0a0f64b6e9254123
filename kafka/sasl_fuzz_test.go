package kafka

import (
	"bytes"
	"context"
	"testing"

	"github.com/runnel-log/runnel"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// FuzzSASL feeds two client messages to each mechanism, as SaslAuthenticate
// and the raw tokens after a v0 handshake do: nothing panics, and only
// the right password authenticates.
func FuzzSASL(f *testing.F) {
	l, err := runnel.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	creds := testCredentials(f)
	s, err := NewServer(l, &Options{Credentials: creds})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()

	_, first, err := scram.Auth{User: "bob", Pass: "hunter2"}.AsSha256Mechanism().Authenticate(context.Background(), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(1), first, []byte("c=biws,r=x,p=AAAA"))
	f.Add(uint8(2), first, []byte("c=biws,r=x,p=AAAA"))
	f.Add(uint8(0), []byte("\x00alice\x00s3cret:with:colons"), []byte{})
	f.Add(uint8(0), []byte("alice\x00alice\x00nope"), []byte{})

	f.Fuzz(func(t *testing.T, mech uint8, msg1, msg2 []byte) {
		c := newConn(s, discardConn{})
		defer c.fetch.close()
		c.sasl.required = true
		c.sasl.mech = []string{mechPlain, mechScram256, mechScram512}[mech%3]
		if _, err := c.authStep(msg1); err != nil {
			return
		} else if c.sasl.done {
			// One message authenticates only PLAIN, and only with a
			// password testCredentials holds.
			if c.sasl.mech != mechPlain || !rightPlain(msg1) {
				t.Fatalf("%s authenticated %q with one message %q", c.sasl.mech, c.sasl.user, msg1)
			}
			return
		}
		c.authStep(msg2)
		if c.sasl.done {
			t.Fatalf("a SCRAM exchange the fuzzer made up authenticated %q", c.sasl.user)
		}
	})
}

// rightPlain reports whether msg is a PLAIN message (authzid NUL user NUL
// password, the authzid empty or the user) with the password
// testCredentials gives its user, worked out apart from authStep.
func rightPlain(msg []byte) bool {
	passwords := map[string]string{"alice": "s3cret:with:colons", "bob": "hunter2", "carol": "only256"}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return false
	}
	want, ok := passwords[string(parts[1])]
	return ok && want == string(parts[2])
}
