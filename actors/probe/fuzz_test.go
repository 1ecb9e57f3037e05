package probe

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/lbhealth/hcsupervisor/messages"
)

// FuzzEvaluateRADIUS feeds arbitrary replies to the RADIUS reply check: a
// hostile server must never crash the prober, and only an authentic
// reply with the expected code may succeed.
func FuzzEvaluateRADIUS(f *testing.F) {
	cfg := &messages.Config{
		ID: 1, Checker: messages.CheckerRADIUS, IP: netip.MustParseAddr("127.0.0.1"),
		Port: 1812, Username: "u", Password: "p", Secret: "s", Response: "accept",
	}
	p := newRADIUS(cfg)
	req, err := p.request(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000})
	if err != nil {
		f.Fatal(err)
	}
	accept := radius.New(radius.CodeAccessAccept, []byte("s"))
	accept.Identifier = req[1]
	accept.Authenticator = [16]byte(req[4:20])
	rfc2865.ReplyMessage_SetString(accept, "welcome")
	good, err := accept.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte{2, req[1], 0, 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		res := p.evaluate(req, b)
		if res.Success && !radius.IsAuthenticResponse(b, req, []byte("s")) {
			t.Fatalf("an unauthentic reply succeeded: %q", res.Message)
		}
	})
}

// FuzzICMPIsReply feeds arbitrary packets to the echo-reply matcher.
func FuzzICMPIsReply(f *testing.F) {
	probers := map[bool]*icmpProber{}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		addr := netip.MustParseAddr(ip)
		probers[addr.Is6()] = newICMP(&messages.Config{
			ID: 1, Checker: messages.CheckerICMP, IP: addr,
		})
	}
	f.Add([]byte{0, 0, 0xff, 0xfe, 0, 1, 0, 1}, true, false)
	f.Add([]byte{129, 0, 0, 0, 0, 1, 0, 1}, false, true)
	f.Fuzz(func(t *testing.T, b []byte, raw, v6 bool) {
		p := probers[v6]
		p.isReply(b, &net.IPAddr{IP: p.ip.AsSlice()}, raw, 1, 1)
	})
}

// FuzzHTTPEvaluate feeds arbitrary status codes and bodies to the HTTP
// verdict: success only for an expected code and a body starting with
// the expected response.
func FuzzHTTPEvaluate(f *testing.F) {
	cfg := &messages.Config{
		ID: 1, Checker: messages.CheckerHTTP, IP: netip.MustParseAddr("127.0.0.1"),
		Port: 80, Method: "GET", Path: "/", ExpectedCodes: []int{200, 204},
		Response: "ok",
	}
	p := newHTTP(cfg, Options{}).(*httpProber)
	f.Add(200, []byte("ok fine"))
	f.Add(204, []byte("o"))
	f.Add(500, []byte("ok"))
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		resp := &http.Response{
			StatusCode: code,
			Status:     http.StatusText(code),
			Body:       io.NopCloser(bytes.NewReader(body)),
		}
		res := p.evaluate(resp)
		want := (code == 200 || code == 204) && strings.HasPrefix(string(body), "ok")
		if res.Success != want {
			t.Fatalf("code %d body %q: success %v, want %v (%s)",
				code, body, res.Success, want, res.Message)
		}
	})
}
