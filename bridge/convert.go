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
// It converts every checker type in every mode: Target.Mode, Mark and, in
// DSR and TUN modes, Host become mode, mark and backend (in plain mode the
// Engine sets Host to IP, and it is dropped). An HTTP request given as an
// absolute URL becomes its path and, as the Host header, its host: the
// probe still goes to the target, where Seesaw's plain mode dialed the
// URL's host. HTTP checks that accept any status code, DNS classes other
// than IN and DNS types without an answer form are rejected with an error
// that wraps ErrUnsupported and names the field. Every error it returns
// wraps messages.ErrInvalidConfig, so one bad config is rejected on its own.
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
	n := notification(cs)
	return &n
}

// notification is FromStatus's value.
func notification(cs messages.CheckStatus) Notification {
	s := cs.Status
	return Notification{
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
		return convertPing(cfg, ch)
	case *UDPChecker:
		return convertUDP(cfg, ch)
	case *RADIUSChecker:
		return convertRADIUS(cfg, ch)
	default:
		if name, ok := unknownCheckerName(ch); ok {
			return unsupported("Checker", "checker type %s, unknown to this server", name)
		}
		return unsupported("Checker", "checker type %T", ch)
	}
}

// convertTarget sets cfg's IP, Port, Mode, Mark and Backend from t, whose
// Proto must be one of protos.
func convertTarget(cfg *messages.Config, t *Target, protos ...uint16) error {
	if err := convertMode(cfg, t); err != nil {
		return err
	}
	if !slices.Contains(protos, t.Proto) {
		return invalid("Target.Proto", "want %d for this checker, got %d",
			protos[0], t.Proto)
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

// convertMode sets cfg's Mode, Mark and Backend from t. Validation then
// checks them together, as it does the socket's.
func convertMode(cfg *messages.Config, t *Target) error {
	switch t.Mode {
	case ModePlain:
		// The Engine sets Host to the backend, which in plain mode is IP.
		cfg.Mark = t.Mark
		return nil
	case ModeDSR:
		cfg.Mode = messages.ModeDSR
	case ModeTUN:
		cfg.Mode = messages.ModeTUN
	default:
		return invalid("Target.Mode", "unknown mode %d", t.Mode)
	}
	cfg.Mark = t.Mark
	if len(t.Host) == 0 {
		return nil
	}
	host, ok := netip.AddrFromSlice(t.Host)
	if !ok {
		return invalid("Target.Host", "want 4 or 16 bytes, got %d", len(t.Host))
	}
	if !host.IsUnspecified() {
		cfg.Backend = host.Unmap()
	}
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
	path, host, err := requestTarget(c.Request)
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
	cfg.Host = host
	cfg.Proxy = c.Proxy
	cfg.Response = c.Response
	cfg.ExpectedCodes = []int{c.ResponseCode}
	cfg.Secure = c.Secure
	cfg.TLSVerify = c.Secure && c.TLSVerify
	return nil
}

// requestTarget returns the path Seesaw sends for request, a path or an
// absolute URL, and the URL's host (with its port, if any) as the Host
// header; empty means the default path and the target as the host.
func requestTarget(request string) (path, host string, err error) {
	if request == "" {
		return "", "", nil
	}
	u, err := url.Parse(request)
	if err != nil {
		return "", "", invalid("HTTPChecker.Request", "%v", err)
	}
	if (u.IsAbs() || u.Host != "") && u.Host == "" {
		return "", "", invalid("HTTPChecker.Request", "URL %q has no host", request)
	}
	// Like Go's HTTP client, which Seesaw uses, drop any fragment and
	// escape what must be escaped. The URL's scheme is dropped too:
	// Seesaw chooses http or https by Secure alone.
	return u.RequestURI(), u.Host, nil
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
	cfg.Checker = messages.CheckerDNS
	cfg.Query = q.Name
	cfg.QueryType = qtype

	// Seesaw fails every probe without an Answer; no expected answer
	// would accept any answer instead.
	if c.Answer == "" {
		return invalid("DNSChecker.Answer", "missing")
	}
	switch qtype {
	case "A", "AAAA":
		return convertDNSAddr(cfg, c.Answer)
	case "CNAME", "NS", "MX", "PTR", "TXT", "SOA":
		cfg.ExpectedAnswers = []string{c.Answer}
		return nil
	}
	return unsupported("DNSChecker.Question.Qtype", "type %s", dns.Type(q.Qtype))
}

// convertDNSAddr sets the expected address of an A or AAAA check.
func convertDNSAddr(cfg *messages.Config, answer string) error {
	want, err := netip.ParseAddr(answer)
	if err != nil || want.Zone() != "" {
		return invalid("DNSChecker.Answer", "%q is not an IP address", answer)
	}
	if cfg.QueryType == "A" {
		want = want.Unmap()
	}
	cfg.ExpectedIPs = []netip.Addr{want}
	return nil
}

// convertPing converts a ping check. Seesaw ignores the port, and so does
// this conversion.
func convertPing(cfg *messages.Config, c *PingChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoICMP, ProtoICMPv6); err != nil {
		return err
	}
	v6 := c.Target.Proto == ProtoICMPv6
	if cfg.IP.Is6() != v6 {
		return invalid("Target.Proto", "%d does not match IP %s", c.Target.Proto, cfg.IP)
	}
	cfg.Checker = messages.CheckerICMP
	cfg.Port = 0
	return nil
}

func convertUDP(cfg *messages.Config, c *UDPChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoUDP); err != nil {
		return err
	}
	cfg.Checker = messages.CheckerUDP
	cfg.Send = c.Send
	cfg.Receive = c.Receive
	return nil
}

func convertRADIUS(cfg *messages.Config, c *RADIUSChecker) error {
	if err := convertTarget(cfg, &c.Target, ProtoUDP); err != nil {
		return err
	}
	cfg.Checker = messages.CheckerRADIUS
	cfg.Username = c.Username
	cfg.Password = c.Password
	cfg.Secret = c.Secret
	cfg.Response = c.Response
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
