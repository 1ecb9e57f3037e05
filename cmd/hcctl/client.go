package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxBody bounds an answer of the HTTP API; /status of 100,000 checks
// is some 40 MB.
const maxBody = 256 << 20

// apiClient calls the operators' HTTP API of one server. Each call has
// the client's timeout. It is safe for concurrent use.
type apiClient struct {
	// addr is the server's address as given, host its host:port and
	// base the URL prefix.
	addr    string
	host    string
	base    string
	timeout time.Duration
	http    *http.Client
}

// newAPIClient returns a client for the listener at addr, host:port or
// an http(s) URL.
func newAPIClient(addr string, timeout time.Duration) *apiClient {
	base := strings.TrimSuffix(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	host := addr
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		host = u.Host
	}
	// NOTE: no proxy from the environment: the listener is the
	// operators' own, and one connection per run needs no keep-alive.
	tr := &http.Transport{
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		DisableKeepAlives: true,
	}
	return &apiClient{
		addr:    addr,
		host:    host,
		base:    base,
		timeout: timeout,
		http:    &http.Client{Transport: tr, Timeout: timeout},
	}
}

// response is an HTTP answer with its body read.
type response struct {
	url    string
	code   int
	status string
	body   []byte
}

// get fetches path; an answer of any status code is a response.
func (a *apiClient) get(ctx context.Context, path string) (*response, error) {
	u := a.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: %w", a.addr, err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := a.http.Do(req)
	if err != nil {
		return nil, a.explain(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	return &response{url: u, code: res.StatusCode, status: res.Status,
		body: body}, nil
}

// getJSON fetches path and decodes its JSON answer, which must be a 200
// with the top-level field key, into v.
func (a *apiClient) getJSON(ctx context.Context, path, key string,
	v any) error {
	res, err := a.get(ctx, path)
	if err != nil {
		return err
	}
	if res.code != http.StatusOK {
		return res.err()
	}
	return res.decode(key, v)
}

// decode decodes the answer into v after checking that it is a JSON
// object with the field key, so that a listener that is not a
// healthcheck-server's is not mistaken for an empty one.
func (r *response) decode(key string, v any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil {
		return fmt.Errorf("GET %s: the answer is not a JSON object: %s",
			r.url, excerpt(r.body))
	}
	if _, ok := fields[key]; !ok {
		return fmt.Errorf("GET %s: the answer has no %q field: %s",
			r.url, key, excerpt(r.body))
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("GET %s: decoding the answer: %w", r.url, err)
	}
	return nil
}

// err describes an answer that is not the one wanted.
func (r *response) err() error {
	return fmt.Errorf("GET %s: %s: %s", r.url, r.status, excerpt(r.body))
}

// explain turns a failed request into an error that says what to check.
func (a *apiClient) explain(err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &op):
		return fmt.Errorf("no server at %s (is healthcheck-server running "+
			"with -metrics_addr %s?): %w", a.addr, a.host, op)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot reach %s: %w", a.addr, op)
	case isTimeout(err):
		return fmt.Errorf("%s did not answer within %v (-timeout)",
			a.addr, a.timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &t) && t.Timeout()
}

// excerpt returns the first line of body, shortened, for an error.
func excerpt(body []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if s == "" {
		return "(empty)"
	}
	return truncate(sanitize(s), 200)
}
