package actors

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// applyChecks is how many checks BenchmarkApply configures.
const applyChecks = 100000

// BenchmarkApply measures the manager's own cost of applying configs:
// adding applyChecks checks, changing the target of every tenth, and
// removing them all, each timed until the manager's next status reply.
// Probes run an hour apart, so no probe runs during the apply.
func BenchmarkApply(b *testing.B) {
	all := make([]messages.Config, applyChecks)
	changed := make([]messages.Config, applyChecks)
	for i := range all {
		all[i] = tcpConfig(uint64(i+1), time.Hour)
		changed[i] = all[i]
		if i%10 == 0 {
			changed[i].IP = netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})
		}
	}

	var add, change, remove time.Duration
	b.ResetTimer()
	for range b.N {
		sys := NewSystem(zerolog.Nop())
		cfg := DefaultManagerConfig()
		cfg.DryRun = true
		cfg.Telemetry = NewTelemetry()
		pid, err := sys.Root.SpawnNamed(NewManager(cfg), "manager")
		if err != nil {
			b.Fatal(err)
		}
		timed := func(cfgs []messages.Config, want int) time.Duration {
			t0 := time.Now()
			sys.Root.Send(pid, &messages.UpdateConfigs{Configs: cfgs})
			res, err := sys.Root.RequestFuture(pid, &messages.RequestStatus{},
				time.Minute).Result()
			if err != nil {
				b.Fatal(err)
			}
			if n := len(res.(*messages.StatusResponse).Statuses); n != want {
				b.Fatal(fmt.Sprintf("%d checks, want %d", n, want))
			}
			return time.Since(t0)
		}
		add += timed(all, applyChecks)
		change += timed(changed, applyChecks)
		remove += timed(nil, 0)
		if err := sys.Root.StopFuture(pid).Wait(); err != nil {
			b.Fatal(err)
		}
		sys.Shutdown()
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(add), "add-ms")
	b.ReportMetric(per(change), "change10%-ms")
	b.ReportMetric(per(remove), "remove-ms")
	b.ReportMetric(0, "ns/op")
}
