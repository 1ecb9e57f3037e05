package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// configJSON is a Config as it appears on the proxy socket: flat, with
// durations and addresses as strings so that their errors can name the
// field.
type configJSON struct {
	ID              *uint64  `json:"id"`
	Interval        string   `json:"interval,omitempty"`
	Timeout         string   `json:"timeout,omitempty"`
	Retries         int      `json:"retries,omitempty"`
	CheckerType     string   `json:"checker_type"`
	IP              string   `json:"ip"`
	Port            int      `json:"port"`
	Mode            string   `json:"mode,omitempty"`
	Mark            int      `json:"mark,omitempty"`
	Backend         string   `json:"backend,omitempty"`
	Secure          bool     `json:"secure,omitempty"`
	TLSVerify       bool     `json:"tls_verify,omitempty"`
	Send            string   `json:"send,omitempty"`
	Receive         string   `json:"receive,omitempty"`
	Method          string   `json:"method,omitempty"`
	Path            string   `json:"path,omitempty"`
	Host            string   `json:"host,omitempty"`
	Proxy           bool     `json:"proxy,omitempty"`
	ExpectedCodes   []int    `json:"expected_codes,omitempty"`
	Response        string   `json:"response,omitempty"`
	Query           string   `json:"query,omitempty"`
	QueryType       string   `json:"query_type,omitempty"`
	ExpectedIPs     []string `json:"expected_ips,omitempty"`
	ExpectedAnswers []string `json:"expected_answers,omitempty"`
	Username        string   `json:"username,omitempty"`
	Password        string   `json:"password,omitempty"`
	Secret          string   `json:"secret,omitempty"`
}

// MarshalJSON encodes the config in the protocol's flat form.
func (c Config) MarshalJSON() ([]byte, error) {
	id := c.ID
	out := configJSON{
		ID:            &id,
		Interval:      formatDuration(c.Interval),
		Timeout:       formatDuration(c.Timeout),
		Retries:       c.Retries,
		CheckerType:   string(c.Checker),
		Port:          c.Port,
		Mode:          string(c.Mode),
		Mark:          c.Mark,
		Secure:        c.Secure,
		TLSVerify:     c.TLSVerify,
		Send:          c.Send,
		Receive:       c.Receive,
		Method:        c.Method,
		Path:          c.Path,
		Host:          c.Host,
		Proxy:         c.Proxy,
		ExpectedCodes: c.ExpectedCodes,
		Response:      c.Response,
		Query:         c.Query,
		QueryType:     c.QueryType,

		ExpectedAnswers: c.ExpectedAnswers,
		Username:        c.Username,
		Password:        c.Password,
		Secret:          c.Secret,
	}
	if c.IP.IsValid() {
		out.IP = c.IP.String()
	}
	if c.Backend.IsValid() {
		out.Backend = c.Backend.String()
	}
	for _, ip := range c.ExpectedIPs {
		out.ExpectedIPs = append(out.ExpectedIPs, ip.String())
	}
	return json.Marshal(out)
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// UnmarshalJSON decodes the protocol's flat form without applying defaults
// or validating; see ParseConfig for both.
func (c *Config) UnmarshalJSON(b []byte) error {
	var in configJSON
	if err := strictUnmarshal(b, &in); err != nil {
		return err
	}
	if in.ID == nil {
		return errors.New("id: missing")
	}
	out := Config{
		ID:            *in.ID,
		Retries:       in.Retries,
		Checker:       CheckerType(in.CheckerType),
		Port:          in.Port,
		Mode:          Mode(in.Mode),
		Mark:          in.Mark,
		Secure:        in.Secure,
		TLSVerify:     in.TLSVerify,
		Send:          in.Send,
		Receive:       in.Receive,
		Method:        in.Method,
		Path:          in.Path,
		Host:          in.Host,
		Proxy:         in.Proxy,
		ExpectedCodes: in.ExpectedCodes,
		Response:      in.Response,
		Query:         in.Query,
		QueryType:     in.QueryType,

		ExpectedAnswers: in.ExpectedAnswers,
		Username:        in.Username,
		Password:        in.Password,
		Secret:          in.Secret,
	}
	var err error
	if out.Interval, err = parseDuration("interval", in.Interval); err != nil {
		return err
	}
	if out.Timeout, err = parseDuration("timeout", in.Timeout); err != nil {
		return err
	}
	if in.IP != "" {
		if out.IP, err = netip.ParseAddr(in.IP); err != nil {
			return fmt.Errorf("ip: %w", err)
		}
	}
	if in.Backend != "" {
		if out.Backend, err = netip.ParseAddr(in.Backend); err != nil {
			return fmt.Errorf("backend: %w", err)
		}
	}
	for _, s := range in.ExpectedIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("expected_ips: %w", err)
		}
		out.ExpectedIPs = append(out.ExpectedIPs, ip)
	}
	*c = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: must be positive, got %s", field, s)
	}
	return d, nil
}

// ConfigError says why one config of an update was rejected.
type ConfigError struct {
	// Index is the config's position in the update's list.
	Index int
	// ID is the config's id; HasID is false when the id could not be read.
	ID    uint64
	HasID bool
	// Err is the reason; it wraps ErrInvalidConfig.
	Err error
}

// Error returns "config <id>: <reason>", or "configs[<index>]: <reason>"
// when the id is unknown.
func (e *ConfigError) Error() string {
	if e.HasID {
		return fmt.Sprintf("config %d: %v", e.ID, e.Err)
	}
	return fmt.Sprintf("configs[%d]: %v", e.Index, e.Err)
}

// Unwrap returns the reason.
func (e *ConfigError) Unwrap() error { return e.Err }

// ParseConfig decodes one config from its JSON form, applies defaults and
// validates it.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, cleanJSONError(err))
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return c, nil
}

// ParseConfigs decodes a config set. Each config that is malformed,
// invalid or a duplicate of an earlier id is rejected on its own; the
// others are returned in order.
func ParseConfigs(raws []json.RawMessage) ([]Config, []*ConfigError) {
	configs := make([]Config, 0, len(raws))
	var rejected []*ConfigError
	seen := make(map[uint64]bool, len(raws))
	for i, raw := range raws {
		c, err := ParseConfig(raw)
		if id, ok := peekID(raw); ok && seen[id] {
			err = fmt.Errorf("%w: id: duplicate", ErrInvalidConfig)
		}
		if err != nil {
			ce := &ConfigError{Index: i, Err: err}
			ce.ID, ce.HasID = peekID(raw)
			if ce.HasID {
				// The first config of an id wins even when it is invalid.
				seen[ce.ID] = true
			}
			rejected = append(rejected, ce)
			continue
		}
		seen[c.ID] = true
		configs = append(configs, c)
	}
	return configs, rejected
}

// peekID reads just the id of a config that failed to decode whole.
func peekID(raw []byte) (uint64, bool) {
	var v struct {
		ID *uint64 `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil || v.ID == nil {
		return 0, false
	}
	return *v.ID, true
}

// strictUnmarshal decodes exactly one JSON value into v, a pointer to a
// struct, rejecting unknown, repeated or differently-cased field names
// and trailing data.
func strictUnmarshal(b []byte, v any) error {
	if err := checkFieldNames(b, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// cleanJSONError turns encoding/json's errors into field-first messages,
// e.g. `port: cannot use string as int`.
func cleanJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: cannot use JSON %s as %s",
			te.Field, te.Value, te.Type)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	return strings.TrimPrefix(msg, "json: ")
}

// checkFieldNames rejects an object whose keys are not exactly the json
// names of v's struct fields, or that repeats one. encoding/json alone
// matches names without regard to case and keeps the last repeat.
func checkFieldNames(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // Not an object: Decode reports it.
	}
	names := jsonNames(reflect.TypeOf(v).Elem())
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return fmt.Errorf("unknown field %q", key)
		case seen[key]:
			return fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

// jsonNames returns the json names of a struct type's fields.
func jsonNames(t reflect.Type) map[string]bool {
	names := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" {
			names[name] = true
		}
	}
	return names
}
