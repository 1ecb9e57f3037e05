package bridge

import (
	"encoding/gob"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"time"
)

// This file declares the values that travel over the Engine's socket:
// net/rpc with its gob codec. gob matches struct fields by name and checks
// their kinds, and names the concrete type behind an interface with a
// registered string; everything here is shaped by those two rules.
//
// NOTE: every wire type keeps the field names of Seesaw's own type, even
// where they break this repository's naming (Id, not ID), because gob
// matches fields by name. Seesaw embeds some fields (Id, Checker, Target,
// Status, State); gob names an embedded field by its type, so plain fields
// with those names are the same on the wire. Signed and unsigned kinds are
// not interchangeable in gob, so every field keeps Seesaw's signedness.
// Fields that Seesaw declares with named types (ipc.AuthType, seesaw.IPProto
// and so on) are plain integers here: gob sends only the kind.

// AuthTrusted is the Context.AuthType of a trusted peer: the only value the
// Engine accepts from the healthcheck component.
const AuthTrusted = 2

// ComponentHealthcheck is the Peer.Component that names Seesaw's
// healthcheck component.
const ComponentHealthcheck = 4

// The healthcheck modes of Target.Mode.
const (
	ModePlain = 0 // connect to the backend itself
	ModeDSR   = 1 // connect to the VIP; a socket mark routes it directly
	ModeTUN   = 2 // connect to the VIP; a socket mark tunnels it (IP-in-IP)
)

// The IP protocols of Target.Proto.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// DNSClassINET is the only DNS class (Question.Qclass) the Engine sends.
const DNSClassINET = 1

// Context is Seesaw's ipc.Context: who is calling the Engine. The Engine
// accepts the healthcheck component's calls only when AuthType is
// AuthTrusted; the other fields are only logged.
type Context struct {
	// AuthToken is empty for a trusted context.
	AuthToken string
	// AuthType is AuthTrusted (2) for the healthcheck component; 0 is
	// none, 1 SSO and 3 untrusted.
	AuthType int
	// Groups is nil for a trusted context.
	Groups []string
	// Peer identifies the calling process.
	Peer Peer
	// Proxy identifies a process relaying the call; zero when direct.
	Proxy Peer
	// User is the user the calling process runs as.
	User User
}

// Peer is Seesaw's ipc.Peer: a Seesaw process.
type Peer struct {
	// Component is the kind of process; ComponentHealthcheck is 4.
	Component int
	// Identity is a free-form name, e.g. "healthcheck [pid 42]".
	Identity string
}

// User is Seesaw's ipc.User: the user a process runs as.
type User struct {
	// Groups is nil for a trusted context.
	Groups []string
	// UID is the numeric user ID, in decimal.
	UID string
	// Username is the login name; empty when it cannot be looked up.
	Username string
}

// NewTrustedContext returns the context the healthcheck component sends
// with every call: trusted, from the healthcheck component of this process,
// as the current user. It is safe for concurrent use.
func NewTrustedContext() *Context {
	c := &Context{
		AuthType: AuthTrusted,
		Peer: Peer{
			Component: ComponentHealthcheck,
			Identity:  fmt.Sprintf("healthcheck [pid %d]", os.Getpid()),
		},
	}
	if u, err := user.Current(); err == nil {
		c.User.Username = u.Username
		c.User.UID = u.Uid
	} else {
		c.User.UID = strconv.Itoa(os.Getuid())
	}
	return c
}

// Checks is Seesaw's healthcheck.Checks: the reply to
// SeesawEngine.Healthchecks.
type Checks struct {
	// Configs maps check IDs to their configs. It is nil when the Engine
	// has no checks, including before it has processed its first vserver
	// config; Seesaw then stops every check.
	Configs map[uint64]*Config
}

// Config is Seesaw's healthcheck.Config: the configuration of one check.
// Within one Engine process the config behind an ID never changes; an
// Engine restart renumbers every check.
type Config struct {
	// Id identifies the check; it equals the check's key in
	// Checks.Configs.
	Id uint64
	// Interval is the time between two probes. Seesaw panics on zero.
	Interval time.Duration
	// Timeout bounds one probe. Seesaw fails every probe when it is zero.
	Timeout time.Duration
	// Retries is how many consecutive failures a healthy check tolerates
	// before it becomes unhealthy.
	Retries int
	// Checker is the probe: one of this package's six checker types.
	Checker Checker
}

// Checker is a Seesaw checker: *TCPChecker, *HTTPChecker, *DNSChecker,
// *PingChecker, *UDPChecker or *RADIUSChecker. Only this package's types
// implement it, so that gob can decode Config.Checker into them.
type Checker interface {
	// target returns the checker's target.
	target() *Target
}

// Target is Seesaw's healthcheck.Target: where a probe goes.
type Target struct {
	// IP is the address the probe connects to: the backend, or the VIP in
	// DSR and TUN modes. It is 4 or 16 bytes long; the Engine sends the
	// 16-byte form, also for IPv4.
	IP net.IP
	// Host is the backend's address; Seesaw only prints it.
	Host net.IP
	// Mark is the SO_MARK set on the probe's socket in DSR and TUN modes;
	// 0 means none.
	Mark int
	// Mode is ModePlain, ModeDSR or ModeTUN.
	Mode int
	// Port is the port the probe connects to; 0 for ping.
	Port int
	// Proto is the IP protocol: ProtoTCP, ProtoUDP, ProtoICMP or
	// ProtoICMPv6. It is unsigned on the wire.
	Proto uint16
}

// TCPChecker is Seesaw's healthcheck.TCPChecker: connect, optionally over
// TLS, optionally send Send and expect Receive as the answer's first
// bytes.
type TCPChecker struct {
	Target Target
	// Receive, if set, must be the first bytes of the answer.
	Receive string
	// Send, if set, is written after connecting.
	Send string
	// Secure wraps the connection in TLS; TLSVerify then verifies the
	// server's certificate.
	Secure    bool
	TLSVerify bool
}

// HTTPChecker is Seesaw's healthcheck.HTTPChecker: send an HTTP request
// and expect ResponseCode (0: any) and a body that starts with Response.
// Request is a path, or an absolute URL; Proxy sends it as a proxy
// request.
type HTTPChecker struct {
	Target Target
	// Secure uses HTTPS; TLSVerify then verifies the server's
	// certificate. The Engine sets TLSVerify also for plain HTTP, where
	// it means nothing.
	Secure    bool
	TLSVerify bool
	// Method is the request method, e.g. "GET".
	Method string
	// Proxy sends Request as a proxy request to the target.
	Proxy bool
	// Request is the request's path, or an absolute URL.
	Request string
	// Response, if set, must be the first bytes of the body.
	Response string
	// ResponseCode is the expected status code; 0 accepts any.
	ResponseCode int
}

// DNSChecker is Seesaw's healthcheck.DNSChecker: ask Question over UDP and
// expect Answer, an IP address, among the answers.
type DNSChecker struct {
	Target Target
	// Question is what to ask.
	Question Question
	// Answer is the IP address an answer record must hold.
	Answer string
}

// Question is miekg/dns's dns.Question, which DNSChecker embeds on the
// wire. Qtype is a DNS type number (1 is A, 28 AAAA); Qclass is
// DNSClassINET.
type Question struct {
	// Name is the domain name, with or without the final dot.
	Name   string
	Qtype  uint16
	Qclass uint16
}

// PingChecker is Seesaw's healthcheck.PingChecker: an ICMP echo.
type PingChecker struct {
	Target Target
	// ID is the echo identifier.
	ID uint16
	// Seqnum is the first sequence number; the Engine sends 0.
	Seqnum uint16
}

// UDPChecker is Seesaw's healthcheck.UDPChecker: send Send in a datagram
// and expect Receive as the answer's first bytes.
type UDPChecker struct {
	Target Target
	// Receive, if set, must be the first bytes of the answer.
	Receive string
	// Send is the datagram's payload.
	Send string
}

// RADIUSChecker is Seesaw's healthcheck.RADIUSChecker: a RADIUS
// Access-Request.
type RADIUSChecker struct {
	Target Target
	// Username, Password and Secret authenticate the Access-Request.
	Username string
	Password string
	Secret   string
	// Response is the expected answer: "accept", "reject", "challenge"
	// or "any".
	Response string
}

func (c *TCPChecker) target() *Target    { return &c.Target }
func (c *HTTPChecker) target() *Target   { return &c.Target }
func (c *DNSChecker) target() *Target    { return &c.Target }
func (c *PingChecker) target() *Target   { return &c.Target }
func (c *UDPChecker) target() *Target    { return &c.Target }
func (c *RADIUSChecker) target() *Target { return &c.Target }

// HealthState is Seesaw's healthcheck.HealthState: the argument of
// SeesawEngine.HealthState.
type HealthState struct {
	// Ctx must be a trusted context; the Engine rejects nil.
	Ctx *Context
	// Notifications must not hold nil elements: gob cannot encode them.
	Notifications []*Notification
}

// Notification is Seesaw's healthcheck.Notification: the status of one
// check.
type Notification struct {
	// Id is the check's ID, as in Checks.Configs.
	Id uint64
	// Status is the check's status.
	Status Status
}

// Status is Seesaw's healthcheck.Status. The Engine acts on State and logs
// Message; it stores the rest unused.
type Status struct {
	// LastCheck is when the last probe started; zero before the first.
	LastCheck time.Time
	// Duration is how long the last probe took.
	Duration time.Duration
	// Failures and Successes count every probe of the check.
	Failures  uint64
	Successes uint64
	// State holds a messages.State: 0 unknown, 1 unhealthy, 2 healthy.
	// NOTE: it is a plain int, not a messages.State, so that a marshaling
	// method added to messages.State can never change the wire format.
	State int
	// Message describes the last probe's outcome.
	Message string
}

// checkerNames are the names Seesaw's gob.Register calls give its checker
// types: gob names a pointer to a named type by "*" and the package *name*,
// not its import path.
var checkerNames = []struct {
	name  string
	value Checker
}{
	{"*healthcheck.DNSChecker", &DNSChecker{}},
	{"*healthcheck.HTTPChecker", &HTTPChecker{}},
	{"*healthcheck.PingChecker", &PingChecker{}},
	{"*healthcheck.RADIUSChecker", &RADIUSChecker{}},
	{"*healthcheck.TCPChecker", &TCPChecker{}},
	{"*healthcheck.UDPChecker", &UDPChecker{}},
}

// registerErr is why registerCheckers failed, or nil.
var registerErr error

// NOTE: gob's names are global to the process and the six names must be
// exactly Seesaw's, so they are registered at init, as Seesaw does. Should
// another package have registered a name for a different type first,
// gob.RegisterName panics; this init recovers and records the conflict, and
// EngineClient reports it as ErrRegistration, rather than crash the process
// at start.
func init() {
	registerErr = registerCheckers()
}

// registerCheckers registers every checker type under its Seesaw name. It
// returns the first conflict, wrapping ErrRegistration.
func registerCheckers() error {
	var first error
	for _, c := range checkerNames {
		if err := registerName(c.name, c.value); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// registerName is gob.RegisterName returning its panic as an error.
func registerName(name string, value any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrRegistration, r)
		}
	}()
	gob.RegisterName(name, value)
	return nil
}
