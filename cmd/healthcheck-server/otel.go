package main

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// libraryReceiveHistogram is the actor library's receive-time instrument,
// whose default buckets suit milliseconds, not seconds.
const libraryReceiveHistogram = "protoactor_actor_message_receive_duration_seconds"

// libraryMetrics turns on the actor library's own OpenTelemetry
// instruments, exported into reg. They cost an order of magnitude in
// message throughput (README, Performance), so they are off unless
// -actor_lib_metrics is given.
//
// NOTE: the library creates its instruments from the global meter
// provider, so this sets it; without that, every spawn leaks a callback
// (PROTOACTOR.md §3). It is called once, from main.
func libraryMetrics(reg prometheus.Registerer) (actor.ConfigOption, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("-actor_lib_metrics: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: libraryReceiveHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
				Boundaries: []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10},
			}},
		)),
	)
	otel.SetMeterProvider(provider)
	return actor.WithMetricProviders(provider), nil
}
