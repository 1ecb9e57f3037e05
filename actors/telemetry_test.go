package actors

import (
	"math"
	"testing"
	"time"

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
