package bridge

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// This file checks that this package's wire types and a second,
// independent set shaped like Seesaw's own (the ss types below) read each
// other's gob streams. gob's registry of interface names is global to a
// process, so both sets cannot hold Seesaw's names at once: the ss side
// runs in a child process of this test binary.

// seesawSideEnv, when set in the environment, makes this test binary the
// Seesaw side of TestWireCompat; its value is the directory the two sides
// exchange streams in.
const seesawSideEnv = "BRIDGE_SEESAW_SIDE_DIR"

// The streams the two sides exchange, each holding the three fixture
// values: context, checks and health state.
const (
	oursStream   = "ours.gob"
	seesawStream = "seesaw.gob"
)

// NOTE: package variables are initialised before any init function runs.
// In the child process this registers the ss checkers under Seesaw's names
// before wire.go's init tries to, which must then give way without
// panicking. In the parent it does nothing.
var seesawSide = os.Getenv(seesawSideEnv) != "" && registerSeesawSide()

func registerSeesawSide() bool {
	gob.RegisterName("*healthcheck.DNSChecker", &ssDNSChecker{})
	gob.RegisterName("*healthcheck.HTTPChecker", &ssHTTPChecker{})
	gob.RegisterName("*healthcheck.PingChecker", &ssPingChecker{})
	gob.RegisterName("*healthcheck.RADIUSChecker", &ssRADIUSChecker{})
	gob.RegisterName("*healthcheck.TCPChecker", &ssTCPChecker{})
	gob.RegisterName("*healthcheck.UDPChecker", &ssUDPChecker{})
	return true
}

// The ss types follow Seesaw's declarations (common/ipc and healthcheck):
// named integer types, the same field order, dns.Question itself. Only
// the fields Seesaw embeds are named fields here, as the type names are
// taken in this package; gob sees no difference.
type (
	ssAuthType  int
	ssComponent int
	ssID        uint64
	ssState     int
	ssMode      int
	ssIPProto   uint16
	ssContext   struct {
		AuthToken string
		AuthType  ssAuthType
		Groups    []string
		Peer      ssPeer
		Proxy     ssPeer
		User      ssUser
	}
	ssPeer struct {
		Component ssComponent
		Identity  string
	}
	ssUser struct {
		Groups   []string
		UID      string
		Username string
	}
	ssChecks struct {
		Configs map[ssID]*ssConfig
	}
	ssConfig struct {
		Id       ssID
		Interval time.Duration
		Timeout  time.Duration
		Retries  int
		Checker  ssChecker
	}
	ssChecker interface {
		Check(timeout time.Duration) string
	}
	ssTarget struct {
		IP    net.IP
		Host  net.IP
		Mark  int
		Mode  ssMode
		Port  int
		Proto ssIPProto
	}
	ssTCPChecker struct {
		Target    ssTarget
		Receive   string
		Send      string
		Secure    bool
		TLSVerify bool
	}
	ssHTTPChecker struct {
		Target       ssTarget
		Secure       bool
		TLSVerify    bool
		Method       string
		Proxy        bool
		Request      string
		Response     string
		ResponseCode int
	}
	ssDNSChecker struct {
		Target   ssTarget
		Question dns.Question
		Answer   string
	}
	ssPingChecker struct {
		Target ssTarget
		ID     uint16
		Seqnum uint16
	}
	ssUDPChecker struct {
		Target  ssTarget
		Receive string
		Send    string
	}
	ssRADIUSChecker struct {
		Target   ssTarget
		Username string
		Password string
		Secret   string
		Response string
	}
	ssHealthState struct {
		Ctx           *ssContext
		Notifications []*ssNotification
	}
	ssNotification struct {
		Id     ssID
		Status ssStatus
	}
	ssStatus struct {
		LastCheck time.Time
		Duration  time.Duration
		Failures  uint64
		Successes uint64
		State     ssState
		Message   string
	}
)

func (*ssTCPChecker) Check(time.Duration) string    { return "tcp" }
func (*ssHTTPChecker) Check(time.Duration) string   { return "http" }
func (*ssDNSChecker) Check(time.Duration) string    { return "dns" }
func (*ssPingChecker) Check(time.Duration) string   { return "ping" }
func (*ssUDPChecker) Check(time.Duration) string    { return "udp" }
func (*ssRADIUSChecker) Check(time.Duration) string { return "radius" }

// Addresses of the fixtures: a 16-byte IPv4 as the Engine sends, a 4-byte
// IPv4 as another encoder might, and an IPv6.
var (
	fixtureV4   = net.ParseIP("192.0.2.10")
	fixtureV4b4 = net.IPv4(192, 0, 2, 11).To4()
	fixtureV6   = net.ParseIP("2001:db8::12")
	fixtureTime = time.Date(2026, 12, 3, 18, 10, 43, 871893286, time.UTC)
)

// oursFixture returns a value of every wire type, with every field set
// somewhere, in this package's types.
func oursFixture() (*Context, *Checks, *HealthState) {
	ctx := &Context{
		AuthToken: "token",
		AuthType:  AuthTrusted,
		Groups:    []string{"a", "b"},
		Peer:      Peer{Component: ComponentHealthcheck, Identity: "healthcheck [pid 1]"},
		Proxy:     Peer{Component: 7, Identity: "proxy"},
		User:      User{Groups: []string{"c"}, UID: "1000", Username: "hc"},
	}
	tg := func(ip net.IP, port int, proto uint16) Target {
		return Target{IP: ip, Host: fixtureV6, Mark: 65536, Mode: ModeTUN,
			Port: port, Proto: proto}
	}
	checkers := []Checker{
		&TCPChecker{Target: tg(fixtureV4, 1, ProtoTCP), Receive: "r", Send: "s",
			Secure: true, TLSVerify: true},
		&HTTPChecker{Target: tg(fixtureV4b4, 2, ProtoTCP), Secure: true,
			TLSVerify: true, Method: "HEAD", Proxy: true, Request: "/x",
			Response: "ok", ResponseCode: 204},
		&DNSChecker{Target: tg(fixtureV6, 3, ProtoUDP),
			Question: Question{Name: "example.test.", Qtype: 28, Qclass: 1},
			Answer:   "2001:db8::1"},
		&PingChecker{Target: tg(fixtureV6, 0, ProtoICMPv6), ID: 65535, Seqnum: 7},
		&UDPChecker{Target: tg(fixtureV4, 5, ProtoUDP), Receive: "r", Send: "s"},
		&RADIUSChecker{Target: tg(fixtureV4, 6, ProtoUDP), Username: "u",
			Password: "p", Secret: "s", Response: "any"},
	}
	checks := &Checks{Configs: make(map[uint64]*Config)}
	for i, c := range checkers {
		id := uint64(1)<<63 + uint64(i) // above the int64 range
		checks.Configs[id] = &Config{
			Id:       id,
			Interval: time.Duration(i+1) * time.Second,
			Timeout:  time.Duration(i+1) * time.Millisecond,
			Retries:  i,
			Checker:  c,
		}
	}
	hs := &HealthState{Ctx: ctx, Notifications: []*Notification{
		{Id: 1 << 63, Status: Status{
			LastCheck: fixtureTime,
			Duration:  time.Microsecond,
			Failures:  1 << 40,
			Successes: 3,
			State:     2,
			Message:   "healthy",
		}},
		{Id: 2, Status: Status{State: 1, Message: "unhealthy"}},
		{Id: 3},
	}}
	return ctx, checks, hs
}

// seesawFixture returns the values of oursFixture in the ss types.
func seesawFixture() (*ssContext, *ssChecks, *ssHealthState) {
	ctx := &ssContext{
		AuthToken: "token",
		AuthType:  2,
		Groups:    []string{"a", "b"},
		Peer:      ssPeer{Component: 4, Identity: "healthcheck [pid 1]"},
		Proxy:     ssPeer{Component: 7, Identity: "proxy"},
		User:      ssUser{Groups: []string{"c"}, UID: "1000", Username: "hc"},
	}
	tg := func(ip net.IP, port int, proto ssIPProto) ssTarget {
		return ssTarget{IP: ip, Host: fixtureV6, Mark: 65536, Mode: 2,
			Port: port, Proto: proto}
	}
	checkers := []ssChecker{
		&ssTCPChecker{Target: tg(fixtureV4, 1, 6), Receive: "r", Send: "s",
			Secure: true, TLSVerify: true},
		&ssHTTPChecker{Target: tg(fixtureV4b4, 2, 6), Secure: true,
			TLSVerify: true, Method: "HEAD", Proxy: true, Request: "/x",
			Response: "ok", ResponseCode: 204},
		&ssDNSChecker{Target: tg(fixtureV6, 3, 17),
			Question: dns.Question{Name: "example.test.", Qtype: dns.TypeAAAA,
				Qclass: dns.ClassINET},
			Answer: "2001:db8::1"},
		&ssPingChecker{Target: tg(fixtureV6, 0, 58), ID: 65535, Seqnum: 7},
		&ssUDPChecker{Target: tg(fixtureV4, 5, 17), Receive: "r", Send: "s"},
		&ssRADIUSChecker{Target: tg(fixtureV4, 6, 17), Username: "u",
			Password: "p", Secret: "s", Response: "any"},
	}
	checks := &ssChecks{Configs: make(map[ssID]*ssConfig)}
	for i, c := range checkers {
		id := ssID(1)<<63 + ssID(i)
		checks.Configs[id] = &ssConfig{
			Id:       id,
			Interval: time.Duration(i+1) * time.Second,
			Timeout:  time.Duration(i+1) * time.Millisecond,
			Retries:  i,
			Checker:  c,
		}
	}
	hs := &ssHealthState{Ctx: ctx, Notifications: []*ssNotification{
		{Id: 1 << 63, Status: ssStatus{
			LastCheck: fixtureTime,
			Duration:  time.Microsecond,
			Failures:  1 << 40,
			Successes: 3,
			State:     2,
			Message:   "healthy",
		}},
		{Id: 2, Status: ssStatus{State: 1, Message: "unhealthy"}},
		{Id: 3},
	}}
	return ctx, checks, hs
}

// encodeAll writes values to path as one gob stream.
func encodeAll(path string, values ...any) error {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encoding %T: %w", v, err)
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// decodeAll reads path as one gob stream into values, which must be all of
// it.
func decodeAll(path string, values ...any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := gob.NewDecoder(bytes.NewReader(b))
	for _, v := range values {
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("decoding %T: %w", v, err)
		}
	}
	if err := dec.Decode(new(any)); err == nil {
		return errors.New("data after the last value")
	}
	return nil
}

// TestWireCompat encodes every wire type with this package's types and
// decodes it with the ss types in a child process, which compares it with
// its own fixture and sends that back, encoded with the ss types, for this
// process to decode and compare.
func TestWireCompat(t *testing.T) {
	if seesawSide {
		t.Skip("this is the child process")
	}
	dir := t.TempDir()
	ctx, checks, hs := oursFixture()
	if err := encodeAll(filepath.Join(dir, oursStream), ctx, checks, hs); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, os.Args[0],
		"-test.run=^TestSeesawSide$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), seesawSideEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Seesaw side: %v\n%s", err, out)
	}

	var gotCtx Context
	var gotChecks Checks
	var gotHS HealthState
	err = decodeAll(filepath.Join(dir, seesawStream), &gotCtx, &gotChecks, &gotHS)
	if err != nil {
		t.Fatalf("decoding the Seesaw side's stream: %v", err)
	}
	for _, c := range []struct {
		name      string
		want, got any
	}{
		{"Context", ctx, &gotCtx},
		{"Checks", checks, &gotChecks},
		{"HealthState", hs, &gotHS},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s from the Seesaw side (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestSeesawSide is the child process of TestWireCompat.
func TestSeesawSide(t *testing.T) {
	if !seesawSide {
		t.Skip("runs only as the child process of TestWireCompat")
	}
	dir := os.Getenv(seesawSideEnv)

	t.Run("this package gave way", func(t *testing.T) {
		if !errors.Is(registerErr, ErrRegistration) {
			t.Errorf("registerErr: got %v, want ErrRegistration", registerErr)
		}
		c := NewEngineClient(filepath.Join(dir, "none.sock"), time.Second)
		if _, err := c.Healthchecks(t.Context()); !errors.Is(err, ErrRegistration) {
			t.Errorf("Healthchecks: got %v, want ErrRegistration", err)
		}
	})

	t.Run("decode", func(t *testing.T) {
		wantCtx, wantChecks, wantHS := seesawFixture()
		var ctx ssContext
		var checks ssChecks
		var hs ssHealthState
		err := decodeAll(filepath.Join(dir, oursStream), &ctx, &checks, &hs)
		if err != nil {
			t.Fatalf("decoding this package's stream: %v", err)
		}
		for _, c := range []struct {
			name      string
			want, got any
		}{
			{"Context", wantCtx, &ctx},
			{"Checks", wantChecks, &checks},
			{"HealthState", wantHS, &hs},
		} {
			if diff := cmp.Diff(c.want, c.got); diff != "" {
				t.Errorf("%s from this package (-want +got):\n%s", c.name, diff)
			}
		}
	})

	t.Run("encode", func(t *testing.T) {
		ctx, checks, hs := seesawFixture()
		err := encodeAll(filepath.Join(dir, seesawStream), ctx, checks, hs)
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewTrustedContext(t *testing.T) {
	got := NewTrustedContext()
	want := &Context{
		AuthType: AuthTrusted,
		Peer: Peer{
			Component: ComponentHealthcheck,
			Identity:  fmt.Sprintf("healthcheck [pid %d]", os.Getpid()),
		},
		User: User{UID: strconv.Itoa(os.Getuid())},
	}
	if u, err := user.Current(); err == nil {
		want.User = User{UID: u.Uid, Username: u.Username}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewTrustedContext() mismatch (-want +got):\n%s", diff)
	}
}

// TestRegistration checks that registering Seesaw's names again, or one
// of them for another type, reports instead of panicking.
func TestRegistration(t *testing.T) {
	if seesawSide {
		t.Skip("the Seesaw side holds the names")
	}
	if registerErr != nil {
		t.Fatalf("registerErr: %v", registerErr)
	}
	if err := registerCheckers(); err != nil {
		t.Errorf("registering again: got %v, want nil", err)
	}
	type other struct{ Target }
	err := registerName("*healthcheck.TCPChecker", &other{})
	if !errors.Is(err, ErrRegistration) {
		t.Errorf("registering another type: got %v, want ErrRegistration", err)
	}
}
