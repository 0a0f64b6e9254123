package kafka

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake: v0-1; SaslAuthenticate: v0-2; mechanisms PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512. With Options.Credentials
// set, a connection must authenticate before any other request but
// ApiVersions; anything else closes it. A failed authentication is
// answered with SASL_AUTHENTICATION_FAILED, and then the connection
// closes. After a v0 handshake, which kafka-python 2 still sends, the
// exchange is Kafka's original one: raw SASL tokens, each a size and its
// bytes with no request header, answered the same way (PLAIN's success is
// an empty token), and a failure closes the connection unanswered.

func init() {
	supports(kmsg.SASLHandshake, 0, 1)
	supports(kmsg.SASLAuthenticate, 0, 2)
}

const (
	mechPlain    = "PLAIN"
	mechScram256 = "SCRAM-SHA-256"
	mechScram512 = "SCRAM-SHA-512"
)

type saslState struct {
	required bool
	done     bool
	mech     string // chosen by the handshake
	user     string
	scram    *scramExchange
	failed   bool // answer, then close
	raw      bool // after a v0 handshake: raw tokens until done
}

// allow says whether a request may be handled in the connection's SASL
// state.
func (st *saslState) allow(key int16) error {
	if !st.required || st.done {
		return nil
	}
	switch key {
	case kmsg.ApiVersions.Int16(), kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16():
		return nil
	}
	return fmt.Errorf("%w: %s before SASL authentication", errCloseConn, kmsg.NameForKey(key))
}

func (c *conn) saslHandshake(req *kmsg.SASLHandshakeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if c.s.opts.Credentials == nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp
	}
	resp.SupportedMechanisms = []string{mechPlain, mechScram256, mechScram512}
	switch {
	case c.sasl.done || c.sasl.mech != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case req.Mechanism == mechPlain || scramHashFor(req.Mechanism) != nil:
		c.sasl.mech, c.sasl.raw = req.Mechanism, req.Version == 0
	default:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	return resp
}

func (c *conn) saslAuthenticate(req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	st := &c.sasl
	if st.mech == "" || st.done || st.raw {
		return nil, fmt.Errorf("%w: SaslAuthenticate without a v1 handshake", errCloseConn)
	}
	out, err := c.authStep(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "authentication failed"
		resp.ErrorMessage = &msg
		st.failed = true
		return resp, nil
	}
	resp.SASLAuthBytes = out
	return resp, nil
}

// rawSASL takes one raw token after a v0 handshake and answers with the
// mechanism's next token; once authenticated, requests follow. A failure
// closes the connection, as Kafka's original exchange has no way to
// answer it.
func (c *conn) rawSASL(token []byte) error {
	out, err := c.authStep(token)
	if err != nil {
		return fmt.Errorf("%w: SASL authentication failed", errCloseConn)
	}
	if c.sasl.done {
		c.sasl.raw = false
	}
	c.enqueue(&answer{token: append([]byte{}, out...)}) // non-nil: PLAIN's success is empty
	return nil
}

// authStep feeds one client message to the handshake's mechanism and
// returns the server's next message; on success st.done is set.
func (c *conn) authStep(in []byte) ([]byte, error) {
	st := &c.sasl
	creds := c.s.opts.Credentials
	var out []byte
	var err error
	switch st.mech {
	case mechPlain:
		// authzid NUL user NUL password
		parts := bytes.Split(in, []byte{0})
		switch {
		case len(parts) != 3:
			err = errors.New("malformed PLAIN message")
		case len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]):
			err = errors.New("authorization id differs from the user")
		case !creds.checkPassword(string(parts[1]), string(parts[2])):
			err = fmt.Errorf("wrong user or password for %q", parts[1])
		default:
			st.user, st.done = string(parts[1]), true
		}
	default: // a SCRAM mechanism: the handshake took no other
		if st.scram == nil {
			st.scram = &scramExchange{creds: creds, h: scramHashFor(st.mech)}
		}
		out, err = st.scram.step(in)
		if err == nil && st.scram.done {
			st.user, st.done = st.scram.user, true
		}
	}
	if err != nil {
		c.s.opts.Logger.Warn("kafka: SASL authentication failed", "remote", c.remote, "mechanism", st.mech, "err", err)
		return nil, err
	}
	return out, nil
}

// scramExchange is the server side of one SCRAM-SHA-256 or SCRAM-SHA-512
// authentication (RFC 5802, RFC 7677): client-first, server-first,
// client-final, server-final.
type scramExchange struct {
	creds *Credentials
	h     *scramHash
	stage int

	user            string
	cred            scramCredential
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	done            bool
}

func (x *scramExchange) step(msg []byte) ([]byte, error) {
	switch x.stage {
	case 0:
		x.stage++
		return x.first(string(msg))
	case 1:
		x.stage++
		return x.final(string(msg))
	}
	return nil, errors.New("SCRAM exchange already finished")
}

// first reads "gs2-header client-first-bare" and answers with the salt,
// iterations and the combined nonce.
func (x *scramExchange) first(msg string) ([]byte, error) {
	// gs2-header: "n," (no channel binding) then an optional "a=authzid", then ",".
	cb, rest, ok := strings.Cut(msg, ",")
	if !ok || cb != "n" && cb != "y" {
		return nil, errors.New("SCRAM: channel binding is not supported")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("SCRAM: malformed client-first message")
	}
	x.gs2Header = cb + "," + authz + ","
	x.clientFirstBare = bare
	attrs := scramAttrs(bare)
	user, err := scramUnescape(attrs["n"])
	if err != nil || user == "" || attrs["r"] == "" {
		return nil, errors.New("SCRAM: malformed client-first message")
	}
	if authz != "" && authz != "a="+attrs["n"] {
		return nil, errors.New("SCRAM: authorization id differs from the user")
	}
	cred, ok := x.creds.users[user][x.h.mech]
	if !ok {
		return nil, fmt.Errorf("SCRAM: no %s keys for user %q", x.h.mech, user)
	}
	x.user, x.cred = user, cred
	var raw [18]byte
	rand.Read(raw[:])
	x.nonce = attrs["r"] + base64.RawStdEncoding.EncodeToString(raw[:])
	x.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", x.nonce, base64.StdEncoding.EncodeToString(cred.salt), cred.iterations)
	return []byte(x.serverFirst), nil
}

// final checks the client's proof and answers with the server's
// signature, which proves to the client that the server knows its keys.
func (x *scramExchange) final(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, errors.New("SCRAM: client-final message without proof")
	}
	withoutProof := msg[:i]
	attrs := scramAttrs(withoutProof)
	if attrs["c"] != base64.StdEncoding.EncodeToString([]byte(x.gs2Header)) {
		return nil, errors.New("SCRAM: channel binding mismatch")
	}
	// The client's nonce must end with the one the server sent, which
	// begins with the client's own: Kafka checks no more, and
	// librdkafka, which writes its own nonce in front again, depends on
	// that.
	if !strings.HasSuffix(attrs["r"], x.nonce) {
		return nil, errors.New("SCRAM: nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil || len(proof) != x.h.size {
		return nil, errors.New("SCRAM: malformed proof")
	}
	authMessage := []byte(x.clientFirstBare + "," + x.serverFirst + "," + withoutProof)
	clientSig := x.h.hmac(x.cred.storedKey, authMessage)
	clientKey := make([]byte, x.h.size)
	for j := range clientKey {
		clientKey[j] = proof[j] ^ clientSig[j]
	}
	if !hmac.Equal(x.h.sum(clientKey), x.cred.storedKey) {
		return nil, fmt.Errorf("SCRAM: wrong password for %q", x.user)
	}
	x.done = true
	serverSig := x.h.hmac(x.cred.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}

// scramAttrs splits "k=v,k=v" into a map (first value wins).
func scramAttrs(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && len(k) == 1 {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return m
}

// scramUnescape decodes a SCRAM saslname: "=2C" is ',' and "=3D" is '='.
func scramUnescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("bad escape")
		}
		i += 2
	}
	return b.String(), nil
}
