package kafka

import (
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
		if _, err := c.authStep(msg1); err != nil || c.sasl.done {
			return
		}
		c.authStep(msg2)
		if c.sasl.done {
			t.Fatalf("a SCRAM exchange the fuzzer made up authenticated %q", c.sasl.user)
		}
	})
}
