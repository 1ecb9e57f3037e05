package actors

import (
	"math"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestStartLagQuantiles(t *testing.T) {
	tel := NewTelemetry()
	if tel.startLag() != nil {
		t.Error("a start lag report before any probe")
	}
	// 98 probes 1ms late and 2 probes 1s late.
	for i := range 100 {
		lag := time.Millisecond
		if i >= 98 {
			lag = time.Second
		}
		tel.probeDone(messages.CheckerTCP, messages.ProbeResult{Success: true}, lag)
	}
	rep := tel.startLag()
	if rep.Probes != 100 {
		t.Fatalf("probes = %d, want 100", rep.Probes)
	}
	// The buckets bound the estimates: 1ms lies in (0.4ms, 1.6ms].
	if rep.P50Seconds <= 0.0004 || rep.P50Seconds > 0.0016 {
		t.Errorf("p50 = %v, want within the 1ms bucket", rep.P50Seconds)
	}
	if rep.P99Seconds <= 0.1 || rep.P99Seconds > 1.7 || math.IsNaN(rep.P99Seconds) {
		t.Errorf("p99 = %v, want within the 1s bucket", rep.P99Seconds)
	}
}

// counterValue returns the value of a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// histogramCount returns how many observations a histogram holds.
func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestPanickingReceiveIsMeasured crashes a measured actor: the message it
// panicked on counts among its messages and receive times, as a failure
// besides.
func TestPanickingReceiveIsMeasured(t *testing.T) {
	sys := testSystem(t)
	tel := NewTelemetry()
	// Resumed, the actor handles nothing but the crash and its start.
	resume := actor.NewOneForOneStrategy(10, time.Minute,
		func(any) actor.Directive { return actor.ResumeDirective })
	props := actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*messages.Crash); ok {
			panic(m.Reason)
		}
	}, actor.WithGuardian(resume))
	pid := sys.Root.Spawn(tel.Wrap("crasher", props))
	defer stopActor(t, sys, pid)
	k := tel.kind("crasher")
	waitFor(t, "the start", func() bool { return histogramCount(t, k.receive) == 1 })

	sys.Root.Send(pid, &messages.Crash{Reason: "test crash"})
	waitFor(t, "the crash", func() bool { return counterValue(t, k.crashes) == 1 })
	if got := counterValue(t, tel.counter(k, &messages.Crash{})); got != 1 {
		t.Errorf("crash messages counted = %v, want 1", got)
	}
	if got := histogramCount(t, k.receive); got != 2 {
		t.Errorf("receive times measured = %d, want 2 (the start and the crash)", got)
	}
}

func TestDeadLetterKind(t *testing.T) {
	tests := []struct {
		id   string
		want string
	}{
		{id: "hc/manager/4809844402031689728", want: "check"},
		{id: "hc/manager/notifier", want: "notifier"},
		{id: "hc/manager", want: "manager"},
		{id: "hc/proxy", want: "proxy"},
		{id: "bridge", want: "bridge"},
		{id: "link", want: "link"},
		{id: "hc", want: "root"},
		{id: "lb/health/manager/7", want: "check"},
		{id: "future$12", want: "other"},
		{id: "hc/nobody", want: "other"},
		{id: "", want: "other"},
	}
	for _, tt := range tests {
		if got := deadLetterKind(actor.NewPID("nonhost", tt.id)); got != tt.want {
			t.Errorf("deadLetterKind(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := deadLetterKind(nil); got != "other" {
		t.Errorf("deadLetterKind(nil) = %q, want other", got)
	}
}
