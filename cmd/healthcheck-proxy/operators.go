package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// operatorsHandler serves the split bridge's own /metrics (the Engine
// calls, pending statuses, last fetch, the actors measured by tel, Go
// runtime), /tree (its live actors) and /healthz, which judges the Engine
// by the bridge's timing in edge as the server's does.
func operatorsHandler(stats *bridge.EdgeStats, edge bridge.EdgeConfig,
	tel *actors.Telemetry) http.Handler {
	engine := stats.Watch(edge)
	reg := tel.Registry()
	reg.MustRegister(stats,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tree", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(tel.Tree())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		rep := messages.HealthReport{Status: "ok", Engine: engine()}
		code := http.StatusOK
		if !rep.Engine.Reachable {
			rep.Status = "degraded"
			rep.Problems = []string{rep.Engine.UnreachableProblem()}
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(rep)
	})
	return mux
}

// serveOperators serves h on addr until the returned server is shut down.
func serveOperators(addr string, h http.Handler, logger zerolog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error().Err(err).Msg("operators_listener_failed")
		}
	}()
	logger.Info().Str("addr", ln.Addr().String()).Msg("operators_listening")
	return srv, nil
}
