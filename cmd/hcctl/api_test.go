package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeAPI serves canned answers on loopback as a healthcheck-server's
// operators' listener does: each route (a ServeMux pattern) answers its
// value as JSON with status 200, or runs it when it is a handler.
func fakeAPI(t *testing.T, routes map[string]any) (addr string) {
	t.Helper()
	mux := http.NewServeMux()
	for pattern, v := range routes {
		h, ok := v.(http.HandlerFunc)
		if !ok {
			h = jsonHandler(t, http.StatusOK, v)
		}
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// jsonHandler answers v as JSON with status code.
func jsonHandler(t *testing.T, code int, v any) http.HandlerFunc {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(b)
	}
}

// textHandler answers text with status code, as http.Error does.
func textHandler(code int, text string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, text, code)
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// before returns the time d before testNow.
func before(d time.Duration) *time.Time {
	t := testNow.Add(-d)
	return &t
}

// testReport is the /status of the tests: one check of each checker and
// state, with messages that need truncating and cleaning.
func testReport() *messages.StatusReport {
	lastCheck := testNow.Add(-2 * time.Second)
	return &messages.StatusReport{Checks: []messages.CheckReport{
		{
			ID: 1, Checker: messages.CheckerTCP, Target: "10.0.0.1:80",
			Config: "tcp 10.0.0.1:80", Interval: "5s",
			Since: before(3*time.Minute + 12*time.Second),
			Status: messages.Status{
				State:     messages.StateHealthy,
				Message:   "TCP connect to 10.0.0.1:80",
				LastCheck: lastCheck, Duration: 2350 * time.Microsecond,
				Successes: 120,
			},
		},
		{
			ID: 2, Checker: messages.CheckerHTTP, Target: "10.0.0.2:8080",
			Config: "http GET /healthz 10.0.0.2:8080", Interval: "5s",
			Since: before(45 * time.Second),
			Status: messages.Status{
				State: messages.StateUnhealthy,
				Message: "HTTP GET http://10.0.0.2:8080/healthz: " +
					"got status 503 Service Unavailable, want 200",
				LastCheck: lastCheck, Duration: 1204 * time.Millisecond,
				Successes: 50, Failures: 7, Restarts: 2,
			},
		},
		{
			ID: 3, Checker: messages.CheckerDNS, Target: "10.0.0.53:53",
			Config: "dns A www.example.com 10.0.0.53:53", Interval: "10s",
		},
		{
			ID: 4, Checker: messages.CheckerICMP, Target: "10.0.0.4",
			Config: "icmp 10.0.0.4", Interval: "1s",
			Since: before(53*time.Hour + 20*time.Minute),
			Status: messages.Status{
				State:     messages.StateHealthy,
				Message:   "ICMP echo reply from 10.0.0.4",
				LastCheck: lastCheck, Duration: 850 * time.Microsecond,
				Successes: 191999, Failures: 1,
				// Restored from the state file, not yet probed again.
				Unconfirmed: true,
			},
		},
		{
			ID: 5, Checker: messages.CheckerUDP, Target: "10.0.0.5:514",
			Config: "udp 10.0.0.5:514", Interval: "5s",
			Since: before(5*time.Hour + 3*time.Minute),
			Status: messages.Status{
				State:     messages.StateUnhealthy,
				Message:   "UDP 10.0.0.5:514:\tread:\nconnection refused",
				LastCheck: lastCheck, Duration: 31 * time.Second,
				Failures: 3636,
			},
		},
		{
			ID: 4809844402031689728, Checker: messages.CheckerRADIUS,
			Target: "10.0.0.9:1812", Config: "radius 10.0.0.9:1812",
			Interval: "30s", Since: before(10 * time.Second),
			Status: messages.Status{
				State:     messages.StateHealthy,
				Message:   "RADIUS Access-Accept from 10.0.0.9:1812 for user hc",
				LastCheck: lastCheck, Duration: 12345 * time.Microsecond,
				Successes: 3, Restarts: 1,
			},
		},
	}}
}

// checkByID returns the check of report with the given ID.
func checkByID(t *testing.T, id uint64) messages.CheckReport {
	t.Helper()
	for _, cr := range testReport().Checks {
		if cr.ID == id {
			return cr
		}
	}
	t.Fatalf("no check %d in testReport", id)
	return messages.CheckReport{}
}
