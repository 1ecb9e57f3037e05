package enginesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// fileCheck is a check as a file spells it. Its fields are Check's, with
// durations as Go duration strings such as "1.5s".
type fileCheck struct {
	ID        uint64 `json:"id"`
	Type      string `json:"type"`
	IP        string `json:"ip"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Interval  string `json:"interval"`
	Timeout   string `json:"timeout"`
	Retries   int    `json:"retries"`
	Send      string `json:"send"`
	Receive   string `json:"receive"`
	Code      int    `json:"code"`
	Method    string `json:"method"`
	Proxy     bool   `json:"proxy"`
	TLSVerify *bool  `json:"tls_verify"`
	Mode      string `json:"mode"`
	Mark      int    `json:"mark"`
}

// checkFields are the names of fileCheck's fields.
var checkFields = jsonNames(reflect.TypeFor[fileCheck]())

// jsonNames returns the JSON names of t's fields.
func jsonNames(t reflect.Type) map[string]bool {
	names := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// LoadFile reads checks from a JSON (.json) or YAML (.yaml, .yml) file
// of the form {"checks": [{"type": "http", "ip": "127.0.0.1", ...}]},
// whose check fields are Check's in snake case ("tls_verify") with
// durations as Go duration strings. "checks" is required, and may be
// empty; unknown fields are errors. Every invalid check is reported, as
// a *CheckError naming its index; errors about the file as a whole wrap
// ErrFileFormat. The checks are validated as ValidateChecks does.
func LoadFile(path string) ([]Check, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading checks: %w", err)
	}
	checks, err := parseFile(filepath.Ext(path), data)
	if err != nil {
		return nil, fmt.Errorf("loading checks from %s: %w", path, err)
	}
	return checks, nil
}

// parseFile parses data in the format its extension ext names.
func parseFile(ext string, data []byte) ([]Check, error) {
	switch strings.ToLower(ext) {
	case ".json":
		return parseJSON(data)
	case ".yaml", ".yml":
		return parseYAML(data)
	}
	return nil, fmt.Errorf("%w: extension %q: want .json, .yaml or .yml",
		ErrFileFormat, ext)
}

// parseYAML parses YAML by way of JSON, so that both formats follow the
// same rules and report the same errors.
func parseYAML(data []byte) ([]Check, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFileFormat, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		// E.g. a mapping with a key that is not a string.
		return nil, fmt.Errorf("%w: %v", ErrFileFormat, err)
	}
	return parseJSON(j)
}

// parseJSON parses the file's top level and then each check.
func parseJSON(data []byte) ([]Check, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFileFormat, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: want an object with a checks list", ErrFileFormat)
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k != "checks" {
			return nil, fmt.Errorf("%w: unknown field %q", ErrFileFormat, k)
		}
	}
	raw, ok := top["checks"]
	if !ok {
		return nil, fmt.Errorf("%w: checks: missing", ErrFileFormat)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%w: checks: want a list", ErrFileFormat)
	}
	return parseChecks(items)
}

// parseChecks parses and validates every check, reporting all errors.
func parseChecks(items []json.RawMessage) ([]Check, error) {
	checks := make([]Check, len(items))
	var errs []error
	for i, item := range items {
		c, err := parseCheck(item)
		if err != nil {
			err.Index = i
			errs = append(errs, err)
			continue
		}
		checks[i] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := ValidateChecks(checks); err != nil {
		return nil, err
	}
	return checks, nil
}

// parseCheck parses one check.
func parseCheck(item json.RawMessage) (Check, *CheckError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
		return Check{}, &CheckError{Reason: "want an object"}
	}
	// NOTE: the names are checked here, not by the decoder's
	// DisallowUnknownFields, because it matches names in any case.
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !checkFields[k] {
			return Check{}, fieldError(k, "unknown field")
		}
	}

	var fc fileCheck
	if err := json.Unmarshal(item, &fc); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Check{}, fieldError(te.Field, "want %s, got %s", te.Type, te.Value)
		}
		return Check{}, &CheckError{Reason: err.Error()}
	}
	return fc.check()
}

// check converts fc to a Check.
func (fc *fileCheck) check() (Check, *CheckError) {
	interval, err := parseDuration("interval", fc.Interval)
	if err != nil {
		return Check{}, err
	}
	timeout, err := parseDuration("timeout", fc.Timeout)
	if err != nil {
		return Check{}, err
	}
	return Check{
		ID:        fc.ID,
		Type:      fc.Type,
		IP:        fc.IP,
		Host:      fc.Host,
		Port:      fc.Port,
		Interval:  interval,
		Timeout:   timeout,
		Retries:   fc.Retries,
		Send:      fc.Send,
		Receive:   fc.Receive,
		Code:      fc.Code,
		Method:    fc.Method,
		Proxy:     fc.Proxy,
		TLSVerify: fc.TLSVerify,
		Mode:      fc.Mode,
		Mark:      fc.Mark,
	}, nil
}

// parseDuration parses the duration in field; empty means zero.
func parseDuration(field, s string) (time.Duration, *CheckError) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fieldError(field, "%q is not a duration such as \"1.5s\"", s)
	}
	return d, nil
}
