package messages

import (
	"fmt"
	"strconv"
	"strings"
)

// soaFields names the fields of an SOA answer in their order.
var soaFields = []string{
	"ns", "mbox", "serial", "refresh", "retry", "expire", "minttl",
}

// NormalizeAnswer returns s, an expected answer to a DNS query of type
// qtype (upper case, not A or AAAA), in the canonical form the DNS prober
// compares, or an error saying why s is not such an answer. The forms are:
//
//   - CNAME, NS and PTR: the target name, e.g. "www.example.com". Names
//     are canonical in lower case with a final dot.
//   - MX: the preference and the exchange, e.g. "10 mail.example.com".
//   - TXT: the record's strings joined without a separator, compared
//     exactly; leading and trailing spaces count.
//   - SOA: "ns mbox serial refresh retry expire minttl", or any leading
//     part of it, at least ns; the answer matches on the fields given.
func NormalizeAnswer(qtype, s string) (string, error) {
	switch qtype {
	case "CNAME", "NS", "PTR":
		return normalizeName(s)
	case "MX":
		return normalizeMX(s)
	case "TXT":
		return s, nil
	case "SOA":
		return normalizeSOA(s)
	}
	return "", fmt.Errorf("no answer form for query type %q", qtype)
}

// CanonicalName returns a domain name in lower case with a final dot.
func CanonicalName(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// normalizeName returns s, a domain name, in canonical form.
func normalizeName(s string) (string, error) {
	if s != "." && !isDomainName(s) {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	return CanonicalName(s), nil
}

// normalizeMX returns s, "preference exchange", in canonical form.
func normalizeMX(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return "", fmt.Errorf("MX answer %q: want \"preference exchange\"", s)
	}
	pref, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return "", fmt.Errorf("MX answer %q: preference %q is not a number "+
			"within 0-65535", s, f[0])
	}
	name, err := normalizeName(f[1])
	if err != nil {
		return "", fmt.Errorf("MX answer %q: %w", s, err)
	}
	return fmt.Sprintf("%d %s", pref, name), nil
}

// normalizeSOA returns s, the leading fields of an SOA answer, in
// canonical form.
func normalizeSOA(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > len(soaFields) {
		return "", fmt.Errorf("SOA answer %q: want 1-%d fields (%s)",
			s, len(soaFields), strings.Join(soaFields, " "))
	}
	for i, v := range f {
		if i < 2 {
			name, err := normalizeName(v)
			if err != nil {
				return "", fmt.Errorf("SOA answer %q: %s: %w", s, soaFields[i], err)
			}
			f[i] = name
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return "", fmt.Errorf("SOA answer %q: %s %q is not a 32-bit number",
				s, soaFields[i], v)
		}
		f[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(f, " "), nil
}
