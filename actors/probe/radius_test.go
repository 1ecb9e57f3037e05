package probe

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/lbhealth/hcsupervisor/messages"
)

// The credentials of the RADIUS tests; testConfig uses them for every
// radius config.
const (
	testUser     = "accept"
	testPassword = "a password longer than sixteen bytes"
	testSecret   = "s3cret"
)

// netipZero stands for the address of a config that an edit sets.
var netipZero netip.AddrPort

// RADIUS attribute types the test server reads.
const (
	attrUserName     = 1
	attrUserPassword = 2
	attrNASIP        = 4
	attrNASID        = 32
	attrNASIPv6      = 95
)

// radiusServer is a RADIUS server written for the tests, independent of
// the library the prober uses. It answers according to the User-Name:
// "accept", "reject" and "challenge" get that reply; "badauth" gets a
// reply authenticated with another secret; "wrongid" a reply with another
// identifier; "silent" no reply. It records every request it finds
// malformed in problems.
type radiusServer struct {
	password string
	// nas is the NAS address requests must carry; if zero, any
	// loopback address.
	nas      netip.Addr
	mu       sync.Mutex
	problems []string
	auths    map[[16]byte]bool // request authenticators seen
}

// answer checks the Access-Request b and returns the reply, or nil.
func (s *radiusServer) answer(b []byte) []byte {
	attrs, err := s.check(b)
	if err != nil {
		s.mu.Lock()
		s.problems = append(s.problems, err.Error())
		s.mu.Unlock()
		return nil
	}
	codes := map[string]byte{"accept": 2, "reject": 3, "challenge": 11,
		"badauth": 2, "wrongid": 2}
	user := string(attrs[attrUserName])
	code, ok := codes[user]
	if !ok {
		return nil
	}
	secret := testSecret
	if user == "badauth" {
		secret = "other"
	}
	reply := radiusReply(code, b, []byte(secret))
	if user == "wrongid" {
		reply[1]++
	}
	return reply
}

// check verifies an Access-Request: its header and length, a fresh
// Request Authenticator, the hidden password and the NAS attributes. It
// returns the attributes by type.
func (s *radiusServer) check(b []byte) (map[byte][]byte, error) {
	if len(b) < 20 || b[0] != 1 || int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return nil, fmt.Errorf("bad header % x", b[:min(len(b), 4)])
	}
	var auth [16]byte
	copy(auth[:], b[4:20])
	s.mu.Lock()
	reused := s.auths[auth]
	s.auths[auth] = true
	s.mu.Unlock()
	if reused || auth == [16]byte{} {
		return nil, fmt.Errorf("request authenticator %x reused", auth)
	}

	attrs := map[byte][]byte{}
	for rest := b[20:]; len(rest) > 0; {
		if len(rest) < 2 || int(rest[1]) < 2 || int(rest[1]) > len(rest) {
			return nil, fmt.Errorf("bad attribute % x", rest)
		}
		attrs[rest[0]] = rest[2:rest[1]]
		rest = rest[rest[1]:]
	}
	hidden := attrs[attrUserPassword]
	if s.password != "" && bytes.Contains(b, []byte(s.password)) {
		return nil, fmt.Errorf("password sent in clear")
	}
	if got := unhide(hidden, auth[:], []byte(testSecret)); got != s.password {
		return nil, fmt.Errorf("password %q, want %q", got, s.password)
	}
	nas4, nas6 := attrs[attrNASIP], attrs[attrNASIPv6]
	if !s.fromNAS(nas4) && !s.fromNAS(nas6) {
		return nil, fmt.Errorf("NAS-IP-Address %v, NAS-IPv6-Address %v: "+
			"want %s", net.IP(nas4), net.IP(nas6), s.wantNAS())
	}
	if len(attrs[attrNASID]) == 0 {
		return nil, fmt.Errorf("no NAS-Identifier")
	}
	return attrs, nil
}

// fromNAS reports whether ip, a NAS address attribute, is the one the
// server expects.
func (s *radiusServer) fromNAS(ip []byte) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !s.nas.IsValid() {
		return ok && addr.IsLoopback()
	}
	return ok && addr == s.nas
}

// wantNAS describes the NAS address the server expects.
func (s *radiusServer) wantNAS() string {
	if !s.nas.IsValid() {
		return "the loopback address"
	}
	return s.nas.String()
}

// unhide reverses RFC 2865's User-Password hiding.
func unhide(hidden, auth, secret []byte) string {
	if len(hidden) == 0 || len(hidden)%16 != 0 {
		return fmt.Sprintf("(hidden value of %d bytes)", len(hidden))
	}
	var plain []byte
	prev := auth
	for i := 0; i < len(hidden); i += 16 {
		key := md5.Sum(append(append([]byte{}, secret...), prev...))
		for j := range 16 {
			plain = append(plain, hidden[i+j]^key[j])
		}
		prev = hidden[i : i+16]
	}
	return string(bytes.TrimRight(plain, "\x00"))
}

// radiusReply returns a reply of code to req, without attributes, with
// the Response Authenticator RFC 2865 defines, computed with secret.
func radiusReply(code byte, req, secret []byte) []byte {
	reply := make([]byte, 20)
	reply[0], reply[1] = code, req[1]
	binary.BigEndian.PutUint16(reply[2:4], 20)
	h := md5.New()
	h.Write(reply[:4])
	h.Write(req[4:20])
	h.Write(secret)
	copy(reply[4:20], h.Sum(nil))
	return reply
}

// newRADIUSServer returns a radiusServer expecting password, and
// requests from nas (or, if zero, any loopback address). Cleanup reports
// every malformed request it saw.
func newRADIUSServer(
	t *testing.T, password string, nas netip.Addr,
) *radiusServer {
	t.Helper()
	s := &radiusServer{password: password, nas: nas, auths: map[[16]byte]bool{}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.problems {
			t.Errorf("RADIUS server: %s", p)
		}
	})
	return s
}

// startRADIUS serves a radiusServer expecting password and returns its
// address and the server.
func startRADIUS(
	t *testing.T, network, address, password string,
) (*radiusServer, func(*messages.Config)) {
	t.Helper()
	s := newRADIUSServer(t, password, netip.Addr{})
	ap := serveUDP(t, network, address, s.answer)
	return s, func(c *messages.Config) {
		c.IP, c.Port = ap.Addr(), int(ap.Port())
		c.Password = password
	}
}

func TestRADIUS(t *testing.T) {
	_, target := startRADIUS(t, "udp4", "127.0.0.1:0", testPassword)
	tests := []struct {
		user, response string
		wantSuccess    bool
		wantMsg        string
	}{
		{"accept", "", true, "RADIUS Access-Request to 127.0.0.1:"},
		{"accept", "accept", true, "; got Access-Accept"},
		{"reject", "accept", false, "; got Access-Reject; want Access-Accept"},
		{"reject", "reject", true, "; got Access-Reject"},
		{"challenge", "challenge", true, "; got Access-Challenge"},
		{"challenge", "reject", false, "; want Access-Reject"},
		{"reject", "any", true, "; got Access-Reject"},
		{"badauth", "any", false, "; response authenticator mismatch"},
		{"wrongid", "accept", false, "; reply identifier"},
	}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.response, func(t *testing.T) {
			edit := func(c *messages.Config) {
				target(c)
				c.Username, c.Response = tc.user, tc.response
			}
			cfg := testConfig(t, messages.CheckerRADIUS, netipZero, edit)
			checkResult(t, runProbe(t, cfg, probeTimeout), tc.wantSuccess, tc.wantMsg)
		})
	}
}

func TestRADIUSPasswords(t *testing.T) {
	for _, pw := range []string{
		"", "short", "exactly 16 bytes", "x:y:z", strings.Repeat("p", 128),
	} {
		t.Run(fmt.Sprintf("%d bytes", len(pw)), func(t *testing.T) {
			_, target := startRADIUS(t, "udp4", "127.0.0.1:0", pw)
			cfg := testConfig(t, messages.CheckerRADIUS, netipZero, target)
			checkResult(t, runProbe(t, cfg, probeTimeout), true, "; got Access-Accept")
		})
	}
}

func TestRADIUSIPv6(t *testing.T) {
	_, target := startRADIUS(t, "udp6", "[::1]:0", testPassword)
	cfg := testConfig(t, messages.CheckerRADIUS, netipZero, target)
	checkResult(t, runProbe(t, cfg, probeTimeout), true, "; got Access-Accept")
}

func TestRADIUSRefused(t *testing.T) {
	checkNoLeaks(t)
	cfg := testConfig(t, messages.CheckerRADIUS, closedUDPPort(t), nil)
	checkResult(t, runProbe(t, cfg, probeTimeout), false, "connection refused")
}

func TestRADIUSSilentServer(t *testing.T) {
	checkNoLeaks(t)
	_, target := startRADIUS(t, "udp4", "127.0.0.1:0", testPassword)
	cfg := testConfig(t, messages.CheckerRADIUS, netipZero, func(c *messages.Config) {
		target(c)
		c.Username = "silent"
	})
	probeSilent(t, cfg, "; read timed out: ")
}

// TestRADIUSConcurrent sends many requests at once: every one must get a
// fresh authenticator (the server checks) and its own reply.
func TestRADIUSConcurrent(t *testing.T) {
	_, target := startRADIUS(t, "udp4", "127.0.0.1:0", testPassword)
	cfg := testConfig(t, messages.CheckerRADIUS, netipZero, target)
	p := mustNew(t, &cfg)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			checkResult(t, p.Probe(t.Context()), true, "; got Access-Accept")
		})
	}
	wg.Wait()
}
