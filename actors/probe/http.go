package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// httpProber sends one HTTP or HTTPS request to a backend and checks the
// status code and the start of the body. It is immutable after newHTTP and
// so safe for concurrent use.
type httpProber struct {
	timeout  time.Duration
	method   string
	url      *url.URL // the request URI; never mutated
	target   string   // ip:port, where every request goes
	host     string   // Host header; empty means target
	codes    []int
	response string
	prefix   string
	dialer   net.Dialer
	client   *http.Client
}

// probeCtxKey is the context key under which Probe stores its own context
// for dial; see httpProber.dial.
type probeCtxKey struct{}

// newHTTP builds the prober for an HTTP config, or a brokenProber if the
// config cannot form a URL.
func newHTTP(cfg *messages.Config, o Options) Prober {
	prefix := fmt.Sprintf("HTTP %s to %s", cfg.Method, cfg.Target())
	u, err := requestURL(cfg)
	if err != nil {
		return &brokenProber{
			message: fmt.Sprintf("%s; invalid URL: %v", prefix, err),
		}
	}

	p := &httpProber{
		timeout:  cfg.Timeout,
		method:   cfg.Method,
		url:      u,
		target:   cfg.Target(),
		host:     cfg.Host,
		codes:    slices.Clone(cfg.ExpectedCodes),
		response: cfg.Response,
		prefix:   prefix,
		dialer:   newDialer(cfg.Mark, o.ResetClose),
	}
	p.client = &http.Client{
		Transport:     p.transport(cfg),
		CheckRedirect: dontFollow,
	}
	return p
}

// requestURL returns the URL of cfg's request. Its host is always the
// target, which the Transport dials. In proxy mode its request URI is in
// absolute form, http(s)://<Host or ip:port><path>, as a client sends
// to a proxy.
//
// NOTE: the absolute form is made with an opaque URL rather than with
// Transport.Proxy, as Seesaw does: a proxy makes the Transport tunnel
// https through CONNECT, and Seesaw's plain mode dialed the host of an
// absolute URL instead of the backend.
func requestURL(cfg *messages.Config) (*url.URL, error) {
	scheme := "http"
	if cfg.Secure {
		scheme = "https"
	}
	path, err := url.ParseRequestURI(cfg.Path)
	if err != nil {
		return nil, err
	}
	u := &url.URL{
		Scheme:   scheme,
		Host:     cfg.Target(),
		Path:     path.Path,
		RawPath:  path.RawPath,
		RawQuery: path.RawQuery,
	}
	if cfg.Proxy {
		authority := cfg.Host
		if authority == "" {
			authority = cfg.Target()
		}
		u.Opaque = "//" + authority + path.EscapedPath()
		u.Path, u.RawPath = "", ""
	}
	return u, nil
}

// transport returns the prober's own Transport. Proxy is left nil so the
// environment's proxy settings never redirect a health check, and
// keep-alives are off so every connection closes with its probe.
func (p *httpProber) transport(cfg *messages.Config) *http.Transport {
	t := &http.Transport{
		DialContext:         p.dial,
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: cfg.Timeout,
	}
	if cfg.Secure {
		t.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: !cfg.TLSVerify,
			ServerName:         tlsServerName(cfg),
		}
	}
	return t
}

// tlsServerName is the name the certificate is checked against: the Host
// header's host if set, else the IP literal (no SNI, IP SANs).
func tlsServerName(cfg *messages.Config) string {
	if cfg.Host == "" {
		return cfg.IP.String()
	}
	if host, _, err := net.SplitHostPort(cfg.Host); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(cfg.Host, "["), "]")
}

// dontFollow makes the client return a redirect as the response, so the 3xx
// itself is evaluated against the expected codes.
func dontFollow(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// dial connects for the Transport under the probe's own context, to the
// target whatever address the Transport asks for: the URL's host is the
// target in any case.
//
// NOTE: the Transport dials under a context detached from the request's
// cancellation and deadline, so that a dial can outlive its request and feed
// the idle pool. A prober has no pool, and a detached dial or TLS handshake
// against a silent server would outlive the probe. Probe therefore puts its
// context in the request's values, which the detached context keeps, and
// dial binds the connection to it.
func (p *httpProber) dial(
	ctx context.Context, network, _ string,
) (net.Conn, error) {
	if pc, ok := ctx.Value(probeCtxKey{}).(context.Context); ok {
		ctx = pc
	}
	conn, err := p.dialer.DialContext(ctx, network, p.target)
	if err != nil {
		return nil, err
	}
	// Probe always sets the value and always ends its context, which
	// ends the hold: no stop is needed.
	bindConn(ctx, conn)
	return conn, nil
}

// Probe sends the request and evaluates the response.
func (p *httpProber) Probe(ctx context.Context) messages.ProbeResult {
	ctx, cancel := bound(ctx, p.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, probeCtxKey{}, ctx)

	u := *p.url
	req, err := http.NewRequestWithContext(ctx, p.method, "", nil)
	if err != nil {
		return failed(fmt.Sprintf("%s; invalid request: %v", p.prefix, err))
	}
	req.URL, req.Host = &u, p.host
	if req.Host == "" {
		req.Host = p.target
	}

	resp, err := p.client.Do(req)
	if err != nil {
		return failed(p.prefix + "; " + stepFailed(ctx, "request", err))
	}
	defer resp.Body.Close()
	return p.evaluate(resp)
}

// evaluate checks the status code and then the start of the body.
func (p *httpProber) evaluate(resp *http.Response) messages.ProbeResult {
	msg := fmt.Sprintf("%s; got %s", p.prefix, resp.Status)
	if !slices.Contains(p.codes, resp.StatusCode) {
		return failed(msg + "; want " + formatCodes(p.codes))
	}
	if p.response == "" {
		return succeeded(msg)
	}

	got := make([]byte, len(p.response))
	body := io.LimitReader(resp.Body, int64(len(got)))
	if _, err := io.ReadFull(body, got); err != nil {
		return failed(fmt.Sprintf(
			"%s; failed to read HTTP response: %v", msg, err))
	}
	if string(got) != p.response {
		return failed(fmt.Sprintf("%s; unexpected response - %q", msg, got))
	}
	return succeeded(msg)
}

// formatCodes lists status codes for a message, e.g. "200 or 204".
func formatCodes(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " or ")
}
