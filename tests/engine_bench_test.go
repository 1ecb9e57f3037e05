package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// Run with:
//
//	go test -run '^$' -bench 'FailureToEngine|NotificationHop' ./tests/

// benchInterval is the probe interval of the latency benchmark: each
// iteration waits for two probes to start, so it bounds the benchmark's
// length, not what it measures.
const benchInterval = 10 * time.Millisecond

// BenchmarkFailureToEngine measures the time from a backend's failure to
// the Engine receiving the unhealthy notification, in each deployment. A
// probe is in flight when the backend fails (it answers 500), so the time
// is the pipeline's alone: probe result, check, notifier (batch_size 1,
// so no batching delay), bridge and HealthState call, plus in the split
// deployment the JSON lines over the server's socket. ns/op is the mean;
// the split deployment also reports its ratio to the in-process mean of
// the same run.
func BenchmarkFailureToEngine(b *testing.B) {
	var inProcess float64
	for _, mode := range engineModes {
		b.Run(mode.name, func(b *testing.B) {
			mean := failureLatency(b, mode)
			b.ReportMetric(mean, "ns/op")
			switch {
			case mode.name == "in-process":
				inProcess = mean
			case inProcess > 0:
				b.ReportMetric(mean/inProcess, "split/inprocess")
			}
		})
	}
}

// failureLatency runs the latency benchmark in mode and returns the mean
// latency in nanoseconds.
func failureLatency(b *testing.B, mode engineMode) float64 {
	gate := startGatedBackend(b)
	arrived := make(chan arrival, 16)
	sim, sock := newEngine(b, enginesim.Config{
		History: -1,
		OnNotify: func(n bridge.Notification) {
			select {
			case arrived <- arrival{state: messages.State(n.Status.State), at: time.Now()}:
			default:
			}
		},
	})
	listenEngine(b, sim, sock)
	check := engineCheck(enginesim.TypeHTTP, gate.addr)
	check.Interval, check.Timeout = benchInterval, waitTimeout
	setEngineChecks(b, sim, check)
	mode.start(b, sock, stackOptions{
		BatchSize:     1,
		FetchInterval: time.Hour,
		Quiet:         true,
	})

	// The first probe makes the check healthy.
	gate.answer(b, http.StatusOK)
	waitArrival(b, arrived, healthy)

	var total time.Duration
	n := 0
	for b.Loop() {
		gate.waitProbe(b)
		start := time.Now()
		gate.codes <- http.StatusInternalServerError
		total += waitArrival(b, arrived, unhealthy).Sub(start)
		n++

		gate.answer(b, http.StatusOK)
		waitArrival(b, arrived, healthy)
	}
	return float64(total.Nanoseconds()) / float64(n)
}

// arrival is a notification's state and when the Engine received it.
type arrival struct {
	state messages.State
	at    time.Time
}

// waitArrival waits for a notification in state want, skipping others,
// and returns when the Engine received it.
func waitArrival(b *testing.B, arrived <-chan arrival, want messages.State) time.Time {
	b.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case a := <-arrived:
			if a.state == want {
				return a.at
			}
		case <-timeout:
			b.Fatalf("no %v notification within %v", want, waitTimeout)
		}
	}
}

// gatedBackend is an HTTP server on loopback each of whose requests waits
// for the code the benchmark gives it.
type gatedBackend struct {
	addr    netip.AddrPort
	probes  chan struct{}
	codes   chan int
	closing chan struct{}
}

// startGatedBackend starts a gatedBackend; it is closed when the
// benchmark ends.
func startGatedBackend(b *testing.B) *gatedBackend {
	b.Helper()
	g := &gatedBackend{
		probes:  make(chan struct{}),
		codes:   make(chan int),
		closing: make(chan struct{}),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.probes <- struct{}{}:
		case <-g.closing:
			return
		case <-r.Context().Done():
			return
		}
		select {
		case code := <-g.codes:
			w.WriteHeader(code)
		case <-g.closing:
		case <-r.Context().Done():
		}
	}))
	b.Cleanup(srv.Close)
	// Runs first: Close waits for the handlers.
	b.Cleanup(func() { close(g.closing) })
	g.addr = addrPort(b, srv.Listener.Addr())
	return g
}

// waitProbe waits until a probe waits for its answer.
func (g *gatedBackend) waitProbe(b *testing.B) {
	b.Helper()
	select {
	case <-g.probes:
	case <-time.After(waitTimeout):
		b.Fatalf("no probe within %v", waitTimeout)
	}
}

// answer waits for a probe and answers it with code.
func (g *gatedBackend) answer(b *testing.B, code int) {
	b.Helper()
	g.waitProbe(b)
	g.codes <- code
}

// hopBatchSize is the size of the batches of BenchmarkNotificationHop:
// the server's default batch_size.
const hopBatchSize = 100

// BenchmarkNotificationHop measures what the split deployment's JSON hop
// costs per notification: encoding a batch of hopBatchSize notifications
// as a protocol line and decoding it (go-value being the in-process
// deployment's hop, a batch passed as a Go value, here copied). Each
// reports ns and allocations per notification; json also reports its
// ratio to go-value of the same run.
func BenchmarkNotificationHop(b *testing.B) {
	batch := hopBatch(hopBatchSize)
	var goValue hopCost
	b.Run("go-value", func(b *testing.B) {
		var sink *messages.NotificationBatch
		goValue = measureHop(b, func() {
			sink = &messages.NotificationBatch{
				Notifications: slices.Clone(batch.Notifications),
			}
		})
		if len(sink.Notifications) != hopBatchSize {
			b.Fatalf("copied %d notifications", len(sink.Notifications))
		}
	})
	b.Run("json", func(b *testing.B) {
		cost := measureHop(b, func() {
			line, err := messages.EncodeLine(batch)
			if err != nil {
				b.Fatal(err)
			}
			msg, err := messages.DecodeLine(line)
			if err != nil {
				b.Fatal(err)
			}
			if got := msg.(*messages.NotificationBatch); len(got.Notifications) != hopBatchSize {
				b.Fatalf("decoded %d notifications", len(got.Notifications))
			}
		})
		if goValue.ns > 0 {
			b.ReportMetric(cost.ns/goValue.ns, "json/go-value")
			b.ReportMetric(cost.allocs/goValue.allocs, "json/go-value-allocs")
		}
	})
}

// hopCost is a hop's cost per notification.
type hopCost struct {
	ns, allocs float64
}

// measureHop runs hop, which passes one batch of hopBatchSize, for the
// benchmark's iterations and reports its cost per notification.
func measureHop(b *testing.B, hop func()) hopCost {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		hop()
	}
	runtime.ReadMemStats(&after)
	notifications := float64(b.N) * hopBatchSize
	cost := hopCost{
		ns:     float64(b.Elapsed().Nanoseconds()) / notifications,
		allocs: float64(after.Mallocs-before.Mallocs) / notifications,
	}
	b.ReportMetric(cost.ns, "ns/notification")
	b.ReportMetric(cost.allocs, "allocs/notification")
	return cost
}

// hopBatch returns a batch of n notifications as a server sends them.
func hopBatch(n int) *messages.NotificationBatch {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	batch := &messages.NotificationBatch{}
	for i := range n {
		state := healthy
		msg := fmt.Sprintf("HTTP GET to 10.0.%d.%d:8080; got 200 OK", i/250, i%250)
		if i%10 == 0 {
			state = unhealthy
			msg = fmt.Sprintf("TCP connect to 10.0.%d.%d:443; connect failed: "+
				"connection refused", i/250, i%250)
		}
		batch.Notifications = append(batch.Notifications, messages.CheckStatus{
			ID: engineIDBase + uint64(i),
			Status: messages.Status{
				State:     state,
				Message:   msg,
				LastCheck: start.Add(time.Duration(i) * time.Millisecond),
				Duration:  time.Duration(1000+i) * time.Microsecond,
				Successes: uint64(1000 + i),
				Failures:  uint64(i % 7),
			},
		})
	}
	return batch
}
