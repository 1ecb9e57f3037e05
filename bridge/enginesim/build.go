package enginesim

import (
	"net"
	"net/netip"

	"github.com/lbhealth/hcsupervisor/bridge"
)

// newConfig builds the Engine's wire config of sp under id, as the
// Engine's newConfig does. mark is the socket mark of a DSR or TUN check;
// pingID is the echo ID of an icmp check. sp has been normalized, so it
// cannot fail.
func newConfig(id uint64, sp spec, mark int, pingID uint16) *bridge.Config {
	t := bridge.Target{
		IP:   wireIP(sp.ip),
		Host: wireIP(sp.host),
		Mark: mark,
		Mode: sp.mode,
		Port: sp.port,
	}
	return &bridge.Config{
		Id:       id,
		Interval: sp.interval,
		Timeout:  sp.timeout,
		Retries:  sp.retries,
		Checker:  newChecker(t, sp, pingID),
	}
}

// wireIP returns a in the 16-byte form the Engine sends, also for IPv4.
func wireIP(a netip.Addr) net.IP {
	return net.IP(a.AsSlice()).To16()
}

// newChecker returns the checker of sp's type aimed at t.
func newChecker(t bridge.Target, sp spec, pingID uint16) bridge.Checker {
	switch sp.typ {
	case TypeHTTP, TypeHTTPS:
		return newHTTPChecker(t, sp)
	case TypeDNS:
		return newDNSChecker(t, sp)
	case TypeICMP:
		return newPingChecker(t, sp, pingID)
	case TypeRADIUS:
		return newRADIUSChecker(t, sp)
	case TypeUDP:
		t.Proto = bridge.ProtoUDP
		return &bridge.UDPChecker{Target: t, Send: sp.send, Receive: sp.receive}
	default:
		return newTCPChecker(t, sp)
	}
}

// newTCPChecker builds a tcp or tcp_tls checker. Only tcp_tls sets
// TLSVerify: a plain TCP checker keeps Seesaw's zero default.
func newTCPChecker(t bridge.Target, sp spec) *bridge.TCPChecker {
	t.Proto = bridge.ProtoTCP
	c := &bridge.TCPChecker{Target: t, Send: sp.send, Receive: sp.receive}
	if sp.typ == TypeTCPTLS {
		c.Secure = true
		c.TLSVerify = sp.tlsVerify
	}
	return c
}

// newHTTPChecker builds an http or https checker with Seesaw's defaults.
// Only https takes TLSVerify from the check; http keeps Seesaw's default,
// true, where it means nothing.
func newHTTPChecker(t bridge.Target, sp spec) *bridge.HTTPChecker {
	t.Proto = bridge.ProtoTCP
	c := &bridge.HTTPChecker{
		Target:       t,
		TLSVerify:    true,
		Method:       orDefault(sp.method, DefaultHTTPMethod),
		Proxy:        sp.proxy,
		Request:      orDefault(sp.send, DefaultHTTPRequest),
		Response:     sp.receive,
		ResponseCode: DefaultHTTPCode,
	}
	if sp.code != 0 {
		c.ResponseCode = sp.code
	}
	if sp.typ == TypeHTTPS {
		c.Secure = true
		c.TLSVerify = sp.tlsVerify
	}
	return c
}

// newDNSChecker builds a dns checker: the question's name is Send, its
// type is Method, and the answer is Receive.
func newDNSChecker(t bridge.Target, sp spec) *bridge.DNSChecker {
	t.Proto = bridge.ProtoUDP
	qtype, _ := dnsType(sp.method) // valid: normalize checked it
	return &bridge.DNSChecker{
		Target: t,
		Question: bridge.Question{
			Name:   sp.send,
			Qtype:  qtype,
			Qclass: bridge.DNSClassINET,
		},
		Answer: sp.receive,
	}
}

// newPingChecker builds an icmp checker, ICMPv6 for an IPv6 target.
func newPingChecker(t bridge.Target, sp spec, id uint16) *bridge.PingChecker {
	t.Proto = bridge.ProtoICMP
	if !sp.ip.Is4() {
		t.Proto = bridge.ProtoICMPv6
	}
	return &bridge.PingChecker{Target: t, ID: id}
}

// newRADIUSChecker builds a radius checker from Send's
// "user:password:secret".
func newRADIUSChecker(t bridge.Target, sp spec) *bridge.RADIUSChecker {
	t.Proto = bridge.ProtoUDP
	creds, _ := radiusCredentials(sp.send) // valid: normalize checked it
	return &bridge.RADIUSChecker{
		Target:   t,
		Username: creds[0],
		Password: creds[1],
		Secret:   creds[2],
		Response: orDefault(sp.receive, DefaultRADIUSResponse),
	}
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
