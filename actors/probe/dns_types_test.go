package probe

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/lbhealth/hcsupervisor/messages"
)

// typedAnswers returns the records types.example.test. has of qtype:
// owner names and targets in mixed case, to test the comparison.
func typedAnswers(name string, qtype uint16) []dns.RR {
	owner := "Types.EXAMPLE.test."
	switch qtype {
	case dns.TypeCNAME:
		return rrs(owner + " CNAME Target.Example.TEST.")
	case dns.TypeNS:
		return rrs(owner+" NS ns1.example.test.", owner+" NS NS2.example.test.")
	case dns.TypeMX:
		return rrs(owner+" MX 10 mx1.example.test.", owner+" MX 20 mx2.example.test.")
	case dns.TypePTR:
		return rrs(owner + " PTR host.example.test.")
	case dns.TypeTXT:
		return rrs(owner + ` TXT "v=spf1 " "-all"`)
	case dns.TypeSOA:
		return rrs(owner + " SOA ns1.example.test. hostmaster.example.test. " +
			"2026120301 7200 900 1209600 300")
	}
	return nil
}

func TestDNSRecordTypes(t *testing.T) {
	ap := startDNS(t, newTestZone())
	tests := []struct {
		name        string
		qtype       string
		expected    []string
		wantSuccess bool
		wantMsg     string
	}{
		{"CNAME any", "CNAME", nil, true, "; received answer target.example.test."},
		{"CNAME expected", "CNAME", []string{"target.example.test"}, true,
			"; received answer target.example.test."},
		{"CNAME not expected", "CNAME", []string{"other.example.test"}, false,
			"; answer target.example.test. not expected"},
		{"NS second", "NS", []string{"ns2.EXAMPLE.test."}, true,
			"; received answer ns2.example.test."},
		{"NS not expected", "NS", []string{"ns3.example.test"}, false,
			"; answer ns1.example.test. (and 1 more) not expected"},
		{"MX expected", "MX", []string{"20 MX2.example.test"}, true,
			"; received answer 20 mx2.example.test."},
		{"MX wrong preference", "MX", []string{"30 mx2.example.test"}, false,
			"not expected"},
		{"PTR expected", "PTR", []string{"host.example.test."}, true,
			"; received answer host.example.test."},
		{"TXT joined", "TXT", []string{"v=spf1 -all"}, true,
			"; received answer v=spf1 -all"},
		{"TXT is case-sensitive", "TXT", []string{"V=SPF1 -all"}, false,
			"not expected"},
		{"SOA by ns", "SOA", []string{"NS1.example.test"}, true,
			"; received answer ns1.example.test. hostmaster.example.test. 2026120301"},
		{"SOA by serial", "SOA",
			[]string{"ns1.example.test hostmaster.example.test 2026120301"}, true,
			"received answer"},
		{"SOA old serial", "SOA",
			[]string{"ns1.example.test hostmaster.example.test 2026120300"}, false,
			"not expected"},
		{"SOA any", "SOA", nil, true, "received answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
				c.Query, c.QueryType = "types.example.test", tc.qtype
				c.ExpectedAnswers = tc.expected
			})
			got := runProbe(t, cfg, probeTimeout)
			checkResult(t, got, tc.wantSuccess, tc.wantMsg)
		})
	}

	t.Run("no answer of the type", func(t *testing.T) {
		cfg := testConfig(t, messages.CheckerDNS, ap, func(c *messages.Config) {
			c.Query, c.QueryType = "a.example.test", "MX"
		})
		checkResult(t, runProbe(t, cfg, probeTimeout), false, "; no MX answer")
	})
}
