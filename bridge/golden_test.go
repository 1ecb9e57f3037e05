package bridge

import (
	"bytes"
	"encoding/gob"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The golden files in testdata are captures of real Seesaw traffic; see
// testdata/README.md for what each holds.
const (
	goldenHealthchecksRequest = "healthchecks-request.gob"
	goldenHealthchecksReply   = "healthchecks-reply.gob"
	golden1000TCP             = "healthchecks-reply-1000-tcp.gob"
	goldenHealthStateRequest1 = "healthstate-request-1.gob"
	goldenHealthStateRequest2 = "healthstate-request-2.gob"
	goldenHealthStateReply    = "healthstate-reply.gob"
)

// goldenID is the first check ID in healthchecks-reply.gob; its 19 configs
// have consecutive IDs.
const goldenID = 5568700939243618304

// readTestdata returns the contents of testdata/name.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// goldenContext is the context in every captured request.
func goldenContext() *Context {
	return &Context{
		AuthType: AuthTrusted,
		Peer: Peer{
			Component: ComponentHealthcheck,
			Identity:  "healthcheck [pid 19793]",
		},
		User: User{UID: "0", Username: "root"},
	}
}

// goldenCheckers are the checkers of healthchecks-reply.gob, as listed in
// testdata/README.md, by ID.
func goldenCheckers() map[uint64]Checker {
	lo, lo6 := net.ParseIP("127.0.0.1"), net.ParseIP("::1")
	tcp := func(port int) Target {
		return Target{IP: lo, Port: port, Proto: ProtoTCP}
	}
	udp := func(port int) Target {
		return Target{IP: lo, Port: port, Proto: ProtoUDP}
	}
	return map[uint64]Checker{
		goldenID + 0: &TCPChecker{
			Target: Target{IP: lo, Host: lo, Port: 42099, Proto: ProtoTCP},
		},
		goldenID + 1: &TCPChecker{Target: tcp(42341), Receive: "PING", Send: "PING\r\n"},
		goldenID + 2: &TCPChecker{Target: tcp(42341), Receive: "abd", Send: "abc"},
		goldenID + 3: &TCPChecker{Target: Target{
			IP: lo, Host: lo, Mark: 65536, Mode: ModeDSR, Port: 42099, Proto: ProtoTCP,
		}},
		goldenID + 4: &TCPChecker{
			Target:  tcp(40429),
			Receive: "hello",
			Send:    "hello",
			Secure:  true,
		},
		goldenID + 5: &TCPChecker{Target: tcp(40429), Secure: true, TLSVerify: true},
		goldenID + 6: &HTTPChecker{
			Target:       tcp(37771),
			TLSVerify:    true,
			Method:       "GET",
			Request:      "/healthz",
			Response:     "ok host=127.0.0.1:",
			ResponseCode: 200,
		},
		goldenID + 7: &HTTPChecker{
			Target:       tcp(37771),
			TLSVerify:    true,
			Method:       "GET",
			Proxy:        true,
			Request:      "/healthz",
			Response:     "ok host=127.0.0.1:37771 uri=http://127.0.0.1:37771/healthz",
			ResponseCode: 200,
		},
		goldenID + 8: &HTTPChecker{
			Target: Target{
				IP: lo, Mark: 65537, Mode: ModeDSR, Port: 37771, Proto: ProtoTCP,
			},
			TLSVerify:    true,
			Method:       "GET",
			Request:      "http://www.example.test/healthz",
			Response:     "ok host=www.example.test uri=/healthz",
			ResponseCode: 200,
		},
		goldenID + 9: &HTTPChecker{
			Target:       tcp(37771),
			TLSVerify:    true,
			Method:       "GET",
			Request:      "/healthz",
			Response:     "ok host=127.0.0.1:37771 uri=/healthz",
			ResponseCode: 200,
		},
		goldenID + 10: &HTTPChecker{
			Target:       tcp(35721),
			TLSVerify:    true,
			Method:       "GET",
			Request:      "http://127.0.0.1:37771/healthz",
			Response:     "ok",
			ResponseCode: 200,
		},
		goldenID + 11: &HTTPChecker{
			Target:       tcp(35721),
			TLSVerify:    true,
			Method:       "GET",
			Proxy:        true,
			Request:      "http://127.0.0.1:37771/healthz",
			Response:     "ok host=127.0.0.1:37771 uri=http://127.0.0.1:37771/healthz",
			ResponseCode: 200,
		},
		goldenID + 12: &HTTPChecker{
			Target:       tcp(37771),
			TLSVerify:    true,
			Method:       "GET",
			Request:      "/nope",
			ResponseCode: 200,
		},
		goldenID + 13: &HTTPChecker{
			Target:       tcp(36817),
			Secure:       true,
			Method:       "HEAD",
			Request:      "/healthz",
			ResponseCode: 200,
		},
		goldenID + 14: &UDPChecker{Target: udp(33628), Receive: "pi", Send: "ping"},
		goldenID + 15: &DNSChecker{
			Target:   udp(40941),
			Question: Question{Name: "example.test", Qtype: 1, Qclass: 1},
			Answer:   "192.0.2.1",
		},
		goldenID + 16: &RADIUSChecker{
			Target:   udp(52959),
			Username: "user",
			Password: "pass",
			Secret:   "s3cret",
			Response: "accept",
		},
		goldenID + 17: &PingChecker{Target: Target{IP: lo, Proto: ProtoICMP}, ID: 37475},
		goldenID + 18: &PingChecker{
			Target: Target{IP: lo6, Proto: ProtoICMPv6},
			ID:     37476,
		},
	}
}

// checksOf returns the Checks holding checkers, each with interval and
// timeout 1s and no retries, as in every capture.
func checksOf(checkers map[uint64]Checker) *Checks {
	checks := &Checks{Configs: make(map[uint64]*Config, len(checkers))}
	for id, c := range checkers {
		checks.Configs[id] = &Config{
			Id:       id,
			Interval: time.Second,
			Timeout:  time.Second,
			Checker:  c,
		}
	}
	return checks
}

// golden1000 is the Checks of healthchecks-reply-1000-tcp.gob. Its
// targets carry Host, which testdata/README.md does not mention.
func golden1000() *Checks {
	const first = 4809844402031689728
	lo := net.ParseIP("127.0.0.1")
	checkers := make(map[uint64]Checker, 1000)
	for id := uint64(first); id < first+1000; id++ {
		checkers[id] = &TCPChecker{Target: Target{
			IP: lo, Host: lo, Port: 46069, Proto: ProtoTCP,
		}}
	}
	return checksOf(checkers)
}

// goldenNotification is a notification of a captured HealthState request:
// healthy after one success that took ns nanoseconds.
func goldenNotification(id uint64, lastCheck time.Time, ns time.Duration,
	msg string) *Notification {
	return &Notification{Id: id, Status: Status{
		LastCheck: lastCheck,
		Duration:  ns,
		Successes: 1,
		State:     2,
		Message:   msg,
	}}
}

// at returns 2026-12-03 18:10:sec.nsec UTC, a time of the captures.
func at(sec, nsec int) time.Time {
	return time.Date(2026, 12, 3, 18, 10, sec, nsec, time.UTC)
}

func TestGoldenDecode(t *testing.T) {
	tests := []struct {
		file   string
		method string
		body   any // decoded into
		want   any
	}{
		{
			file:   goldenHealthchecksRequest,
			method: methodHealthchecks,
			body:   &Context{},
			want:   goldenContext(),
		},
		{
			file:   goldenHealthchecksReply,
			method: methodHealthchecks,
			body:   &Checks{},
			want:   checksOf(goldenCheckers()),
		},
		{
			file:   golden1000TCP,
			method: methodHealthchecks,
			body:   &Checks{},
			want:   golden1000(),
		},
		{
			file:   goldenHealthStateRequest1,
			method: methodHealthState,
			body:   &HealthState{},
			want: &HealthState{Ctx: goldenContext(), Notifications: []*Notification{
				goldenNotification(goldenID+15, at(43, 871893286), 645366,
					"DNS example.test. IN A query to port 40941; "+
						"received answer 192.0.2.1"),
				goldenNotification(goldenID+13, at(43, 921088386), 3777219,
					"HTTP HEAD to 127.0.0.1:36817; got 200 OK"),
				goldenNotification(goldenID+16, at(43, 971471173), 556685,
					"RADIUS Access-Request to port 52959; "+
						"got RADIUS Access-Accept response"),
			}},
		},
		{
			file:   goldenHealthStateRequest2,
			method: methodHealthState,
			body:   &HealthState{},
			want: &HealthState{Ctx: goldenContext(), Notifications: []*Notification{
				goldenNotification(goldenID+3, at(44, 21475678), 372181,
					"TCP connect to 127.0.0.1:42099"),
				goldenNotification(goldenID+18, at(44, 71382714), 287186,
					"ICMP ping to host ::1"),
			}},
		},
		{
			file:   goldenHealthStateReply,
			method: methodHealthState,
			body:   new(int),
			want:   new(int),
		},
	}

	t.Run("every file is tested", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "*.gob"))
		if err != nil {
			t.Fatal(err)
		}
		tested := make(map[string]bool)
		for _, tt := range tests {
			tested[tt.file] = true
		}
		for _, f := range files {
			if !tested[filepath.Base(f)] {
				t.Errorf("%s has no test", f)
			}
		}
	})

	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dec := gob.NewDecoder(bytes.NewReader(readTestdata(t, tt.file)))
			method, seq := decodeHeader(t, dec, tt.body)
			if method != tt.method || seq != 0 {
				t.Errorf("header: got method %q seq %d, want %q seq 0",
					method, seq, tt.method)
			}
			if err := dec.Decode(tt.body); err != nil {
				t.Fatalf("decoding body: %v", err)
			}
			if diff := cmp.Diff(tt.want, tt.body); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
			if err := dec.Decode(new(any)); err != io.EOF {
				t.Errorf("after the body: got %v, want io.EOF", err)
			}
		})
	}
}

// decodeHeader decodes the net/rpc header that precedes body: a Request
// before arguments, a Response before a reply. A reply's Error must be
// empty.
func decodeHeader(t *testing.T, dec *gob.Decoder, body any) (string, uint64) {
	t.Helper()
	switch body.(type) {
	case *Context, *HealthState:
		var req rpc.Request
		if err := dec.Decode(&req); err != nil {
			t.Fatalf("decoding request header: %v", err)
		}
		return req.ServiceMethod, req.Seq
	default:
		var resp rpc.Response
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("decoding response header: %v", err)
		}
		if resp.Error != "" {
			t.Errorf("response header: got error %q, want none", resp.Error)
		}
		return resp.ServiceMethod, resp.Seq
	}
}

// TestGoldenIPs checks what the equality of net.IP in TestGoldenDecode
// hides: the Engine sends every address, IPv4 too, in 16 bytes.
func TestGoldenIPs(t *testing.T) {
	for _, file := range []string{goldenHealthchecksReply, golden1000TCP} {
		t.Run(file, func(t *testing.T) {
			dec := gob.NewDecoder(bytes.NewReader(readTestdata(t, file)))
			var checks Checks
			if err := dec.Decode(&rpc.Response{}); err != nil {
				t.Fatal(err)
			}
			if err := dec.Decode(&checks); err != nil {
				t.Fatal(err)
			}
			for id, c := range checks.Configs {
				tg := c.Checker.target()
				if got := len(tg.IP); got != net.IPv6len {
					t.Errorf("%d: Target.IP is %d bytes, want 16", id, got)
				}
				if tg.Host != nil && len(tg.Host) != net.IPv6len {
					t.Errorf("%d: Target.Host is %d bytes, want 16", id, len(tg.Host))
				}
			}
		})
	}
}
