package bridge

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"reflect"
	"slices"

	"github.com/lbhealth/hcsupervisor/messages"
	"github.com/miekg/dns"
)

// ToConfig converts c, the Seesaw config stored under id in
// Checks.Configs, to the config of a check this server runs, with defaults
// applied and validated.
//
// It converts TCP, HTTP and DNS checkers whose target is plain (Mode 0, no
// Mark). Ping, UDP and RADIUS checkers, DSR and TUN targets, HTTP proxy
// requests and absolute request URLs, HTTP checks that accept any status
// code and DNS types other than A and AAAA are rejected with an error that
// wraps ErrUnsupported and names the field. Every error it returns wraps
// messages.ErrInvalidConfig, so one bad config is rejected on its own.
//
// TLSVerify is kept only where Secure is set: the Engine sets it for plain
// HTTP too, where it means nothing.
func ToConfig(id uint64, c *Config) (messages.Config, error) {
	cfg, err := convert(id, c)
	if err != nil {
		return messages.Config{}, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return messages.Config{}, fmt.Errorf("%w: %v", messages.ErrInvalidConfig, err)
	}
	return cfg, nil
}

// ToConfigs converts every config of checks with ToConfig. It returns the
// configs that convert in ascending ID order, and the reason for each one
// that does not by ID. Either is nil when empty; both are nil when checks
// is nil.
func ToConfigs(checks *Checks) (configs []messages.Config, rejected map[uint64]error) {
	if checks == nil {
		return nil, nil
	}
	for _, id := range slices.Sorted(maps.Keys(checks.Configs)) {
		cfg, err := ToConfig(id, checks.Configs[id])
		if err != nil {
			if rejected == nil {
				rejected = make(map[uint64]error)
			}
			rejected[id] = err
			continue
		}
		configs = append(configs, cfg)
	}
	return configs, rejected
}

// FromStatus returns the notification that tells the Engine cs. The State
// values of messages are Seesaw's; Restarts has no place on the wire.
func FromStatus(cs messages.CheckStatus) *Notification {
	s := cs.Status
	return &Notification{
		Id: cs.ID,
		Status: Status{
			// UTC drops the monotonic reading and any odd zone offset,
			// neither of which an older gob decoder needs to meet.
			LastCheck: s.LastCheck.UTC(),
			Duration:  s.Duration,
			Failures:  s.Failures,
			Successes: s.Successes,
			State:     int(s.State),
			Message:   s.Message,
		},
	}
}

// convert maps c's fields to a config without applying defaults.
func convert(id uint64, c *Config) (messages.Config, error) {
	if c == nil {
		return messages.Config{}, invalid("Config", "missing")
	}
	if c.Id != id {
		return messages.Config{}, invalid("Id", "%d differs from its key %d", c.Id, id)
	}

	// Seesaw would panic on a zero Interval and fail every probe on a zero
	// Timeout; the Engine always sends both, so zero is not "default".
	if c.Interval <= 0 {
		return messages.Config{}, invalid("Interval", "must be positive, got %v",
			c.Interval)
	}
	if c.Timeout <= 0 {
		return messages.Config{}, invalid("Timeout", "must be positive, got %v",
			c.Timeout)
	}

	cfg := messages.Config{
		ID:       id,
		Interval: c.Interval,
		Timeout:  c.Timeout,
		Retries:  c.Retries,
	}
	return cfg, convertChecker(&cfg, c.Checker)
}

// convertChecker sets cfg's checker fields from ch.
func convertChecker(cfg *messages.Config, ch Checker) error {
	// Every Checker is a pointer, so IsNil cannot panic.
	if ch == nil || reflect.ValueOf(ch).IsNil() {
		return invalid("Checker", "missing")
	}
	switch ch := ch.(type) {
	case *TCPChecker:
		return convertTCP(cfg, ch)
	case *HTTPChecker:
		return convertHTTP(cfg, ch)
	case *DNSChecker:
		return convertDNS(cfg, ch)
	case *PingChecker:
		return unsupported("Checker", "ping checks")
	case *UDPChecker:
		return unsupported("Checker", "UDP checks")
	case *RADIUSChecker:
		return unsupported("Checker", "RADIUS checks")
	default:
		return unsupported("Checker", "checker type %T", ch)
	}
}

// convertTarget sets cfg's IP and Port from t, whose Proto must be proto.
func convertTarget(cfg *messages.Config, t *Target, proto uint16) error {
	switch t.Mode {
	case ModePlain:
	case ModeDSR:
		return unsupported("Target.Mode", "DSR (%d) healthchecks", t.Mode)
	case ModeTUN:
		return unsupported("Target.Mode", "TUN (%d) healthchecks", t.Mode)
	default:
		return invalid("Target.Mode", "unknown mode %d", t.Mode)
	}
	if t.Mark != 0 {
		return unsupported("Target.Mark", "socket mark %d", t.Mark)
	}
	if t.Proto != proto {
		return invalid("Target.Proto", "want %d for this checker, got %d", proto, t.Proto)
	}

	// The Engine sends IPv4 addresses in their 16-byte v4-mapped form.
	ip, ok := netip.AddrFromSlice(t.IP)
	if !ok {
		return invalid("Target.IP", "want 4 or 16 bytes, got %d", len(t.IP))
	}
	cfg.IP = ip.Unmap()
	cfg.Port = t.Port
	return nil
}

func convertTCP(cfg *messages.Config, c *TCPChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoTCP); err != nil {
		return err
	}
	cfg.Checker = messages.CheckerTCP
	cfg.Send = c.Send
	cfg.Receive = c.Receive
	cfg.Secure = c.Secure
	cfg.TLSVerify = c.Secure && c.TLSVerify
	return nil
}

func convertHTTP(cfg *messages.Config, c *HTTPChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoTCP); err != nil {
		return err
	}
	if c.Proxy {
		return unsupported("HTTPChecker.Proxy", "proxy requests")
	}
	path, err := requestPath(c.Request)
	if err != nil {
		return err
	}
	// TODO(bridge): accept any status code once messages.Config can
	// say so; until then a check that accepts any code is rejected rather
	// than narrowed to some codes.
	if c.ResponseCode == 0 {
		return unsupported("HTTPChecker.ResponseCode", "0 (any status code)")
	}

	cfg.Checker = messages.CheckerHTTP
	cfg.Method = c.Method
	cfg.Path = path
	cfg.Response = c.Response
	cfg.ExpectedCodes = []int{c.ResponseCode}
	cfg.Secure = c.Secure
	cfg.TLSVerify = c.Secure && c.TLSVerify
	return nil
}

// requestPath returns the request target Seesaw sends for request, which
// must be a path (origin form); empty means the default path.
func requestPath(request string) (string, error) {
	if request == "" {
		return "", nil
	}
	u, err := url.Parse(request)
	if err != nil {
		return "", invalid("HTTPChecker.Request", "%v", err)
	}
	if u.IsAbs() || u.Host != "" {
		return "", unsupported("HTTPChecker.Request", "absolute URL %q", request)
	}
	// Like Go's HTTP client, which Seesaw uses, drop any fragment and
	// escape what must be escaped.
	return u.RequestURI(), nil
}

func convertDNS(cfg *messages.Config, c *DNSChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoUDP); err != nil {
		return err
	}
	q := c.Question
	if q.Qclass != DNSClassINET {
		return unsupported("DNSChecker.Question.Qclass", "class %s", dns.Class(q.Qclass))
	}
	qtype := dns.TypeToString[q.Qtype]
	if qtype != "A" && qtype != "AAAA" {
		return unsupported("DNSChecker.Question.Qtype", "type %s", dns.Type(q.Qtype))
	}

	// Seesaw fails every probe without a parseable Answer; ExpectedIPs
	// left empty would accept any answer instead.
	if c.Answer == "" {
		return invalid("DNSChecker.Answer", "missing")
	}
	want, err := netip.ParseAddr(c.Answer)
	if err != nil || want.Zone() != "" {
		return invalid("DNSChecker.Answer", "%q is not an IP address", c.Answer)
	}
	if qtype == "A" {
		want = want.Unmap()
	}

	cfg.Checker = messages.CheckerDNS
	cfg.Query = q.Name
	cfg.QueryType = qtype
	cfg.ExpectedIPs = []netip.Addr{want}
	return nil
}

// invalid returns the error for a config whose field is wrong.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", messages.ErrInvalidConfig, field,
		fmt.Sprintf(format, args...))
}

// unsupported returns the error for a config whose field asks for
// something this server cannot run yet.
func unsupported(field, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: %s", messages.ErrInvalidConfig, ErrUnsupported,
		field, fmt.Sprintf(format, args...))
}
