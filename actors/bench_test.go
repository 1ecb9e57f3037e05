package actors

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// messagesPerRound is how many messages each variant handles per
// iteration of BenchmarkActorMetricsCost.
const messagesPerRound = 20000

type benchMsg struct{ last bool }

// roundTime sends messagesPerRound messages to a fresh actor built by
// wrap in sys and returns how long until the last one was handled.
func roundTime(sys *actor.ActorSystem, wrap func(*actor.Props) *actor.Props) time.Duration {
	done := make(chan struct{})
	var n atomic.Int64
	pid := sys.Root.Spawn(wrap(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*benchMsg); ok {
			n.Add(1)
			if m.last {
				close(done)
			}
		}
	})))
	msg, last := &benchMsg{}, &benchMsg{last: true}
	start := time.Now()
	for range messagesPerRound - 1 {
		sys.Root.Send(pid, msg)
	}
	sys.Root.Send(pid, last)
	<-done
	elapsed := time.Since(start)
	sys.Root.StopFuture(pid).Wait()
	return elapsed
}

// BenchmarkActorMetricsCost measures, in one run, the message throughput
// of a bare actor, of one measured by our Telemetry, and of one in a
// system with the actor library's own OpenTelemetry metrics, and reports
// each cost per message and as a ratio to the bare actor.
func BenchmarkActorMetricsCost(b *testing.B) {
	bare := actor.NewActorSystem()
	tel := NewTelemetry()
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		b.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	// NOTE: the library reads the global provider; restored below.
	otel.SetMeterProvider(provider)
	defer otel.SetMeterProvider(noop.NewMeterProvider())
	lib := actor.NewActorSystem(actor.WithMetricProviders(provider))
	defer bare.Shutdown()
	defer lib.Shutdown()

	identity := func(p *actor.Props) *actor.Props { return p }
	measured := func(p *actor.Props) *actor.Props { return tel.Wrap("bench", p) }
	var tBare, tTel, tLib time.Duration
	b.ResetTimer()
	for range b.N {
		tBare += roundTime(bare, identity)
		tTel += roundTime(bare, measured)
		tLib += roundTime(lib, identity)
	}
	perMsg := func(d time.Duration) float64 {
		return float64(d.Nanoseconds()) / float64(b.N*messagesPerRound)
	}
	b.ReportMetric(perMsg(tBare), "bare-ns/msg")
	b.ReportMetric(perMsg(tTel), "telemetry-ns/msg")
	b.ReportMetric(perMsg(tLib), "library-otel-ns/msg")
	b.ReportMetric(perMsg(tTel)/perMsg(tBare), "telemetry/bare")
	b.ReportMetric(perMsg(tLib)/perMsg(tBare), "library-otel/bare")
}
