package actors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

func TestServiceStopsWhenAChildDies(t *testing.T) {
	edgeStarted := make(chan *actor.PID, 1)
	edge := Edge{Name: "edge", Props: func(*actor.PID) *actor.Props {
		return actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*actor.Started); ok {
				edgeStarted <- c.Self()
			}
		})
	}}
	mcfg := DefaultManagerConfig()
	mcfg.NewProber = newFakeProbers().newProber
	mcfg.Logger = testLogger(t)
	svc, err := Start(ServiceConfig{
		Manager: mcfg, Edges: []Edge{edge}, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := <-edgeStarted

	// As when the edge's supervisor gives up on it.
	if err := svc.System().Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the service did not stop after its edge died")
	}
	if err := svc.Err(); err == nil || !strings.Contains(err.Error(), "hc/edge") {
		t.Errorf("Err() = %v, want it to name the dead edge", err)
	}

	// Stop still works, twice.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
}

// faultEdge is an edge that acknowledges injected faults and suffers
// none.
func faultEdge(name string) Edge {
	return Edge{Name: name, Props: func(*actor.PID) *actor.Props {
		return actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*messages.InjectFault); ok {
				c.Respond(&messages.Ack{Message: "ok"})
			}
		})
	}}
}

// startTestService starts a service with fake probers, stats and the
// given edges, stopped when the test ends.
func startTestService(t *testing.T, stats *FaultStats, edges ...Edge) *Service {
	t.Helper()
	mcfg := DefaultManagerConfig()
	mcfg.NewProber = newFakeProbers().newProber
	mcfg.Logger = testLogger(t)
	mcfg.FaultStats = stats
	return startService(t, mcfg, edges...)
}

// startService starts a service of mcfg and the given edges, logging to
// the test, stopped when the test ends.
func startService(t *testing.T, mcfg ManagerConfig, edges ...Edge) *Service {
	t.Helper()
	svc, err := Start(ServiceConfig{Manager: mcfg, Edges: edges, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return svc
}

// injectVia sends f to the service's root, as the socket proxy does, and
// fails the test unless it is acknowledged.
func injectVia(t *testing.T, svc *Service, f *messages.InjectFault) {
	t.Helper()
	res, err := svc.System().Root.RequestFuture(svc.root, f, 10*time.Second).Result()
	if _, ok := res.(*messages.Ack); err != nil || !ok {
		t.Fatalf("inject %+v: %#v, %v; want an ack", f, res, err)
	}
}

func TestInjectedFaultsCounted(t *testing.T) {
	stats := &FaultStats{}
	svc := startTestService(t, stats,
		faultEdge(messages.ActorProxy), faultEdge(messages.ActorBridge))
	svc.System().Root.Send(svc.Manager(), &messages.UpdateConfigs{
		Configs: []messages.Config{tcpConfig(1, time.Hour)},
	})

	tests := []struct {
		name  string
		fault messages.InjectFault
		want  uint64 // counted
	}{
		{
			name:  "proxy, over the bound",
			fault: messages.InjectFault{Actor: messages.ActorProxy, Count: 150},
			want:  messages.MaxSingletonCrashes,
		},
		{
			name:  "bridge",
			fault: messages.InjectFault{Actor: messages.ActorBridge, Count: 3},
			want:  3,
		},
		{
			name:  "manager, over the bound",
			fault: messages.InjectFault{Actor: messages.ActorManager, Count: 150},
			want:  messages.MaxSingletonCrashes,
		},
		{
			name:  "check",
			fault: messages.InjectFault{ID: 1, Fault: messages.FaultError, Count: 5},
			want:  5,
		},
		{
			name: "check, over the bound",
			fault: messages.InjectFault{ID: 1, Fault: messages.FaultError,
				Count: messages.MaxFaultCount},
			want: messages.MaxFaultCount - 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fault
			if f.Fault == "" {
				f.Fault = messages.FaultPanic
			}
			before := stats.Injected(f.Fault)
			injectVia(t, svc, &f)
			if got := stats.Injected(f.Fault) - before; got != tt.want {
				t.Errorf("counted %d injected faults, want %d", got, tt.want)
			}
		})
	}
}

func TestManagerCrashCountsAsResume(t *testing.T) {
	stats := &FaultStats{}
	svc := startTestService(t, stats)
	injectVia(t, svc, &messages.InjectFault{
		Actor: messages.ActorManager, Fault: messages.FaultPanic, Count: 1,
	})
	waitFor(t, "the manager's resume", func() bool {
		return stats.ManagerResumes.Load() == 1
	})
	// The manager answers again.
	if _, err := svc.System().Root.RequestFuture(svc.Manager(),
		&messages.RequestStatus{}, 10*time.Second).Result(); err != nil {
		t.Fatalf("status after the resume: %v", err)
	}
	if got := stats.SingletonRestarts.Load(); got != 0 {
		t.Errorf("singleton restarts = %d, want 0: a resume is no restart", got)
	}
	k := svc.Telemetry().kind("manager")
	if got := counterValue(t, k.restart); got != 0 {
		t.Errorf("manager restarts measured = %v, want 0", got)
	}
	if got := counterValue(t, k.crashes); got != 1 {
		t.Errorf("manager failures measured = %v, want 1", got)
	}
}

// A root spawned with rootGuardian survives its own crash: it resumes,
// neither restarted nor stopped, and its children keep running.
func TestRootGuardianResumes(t *testing.T) {
	var lines syncBuffer
	sys := NewSystem(zerolog.Nop())
	defer sys.Shutdown()
	var started, childStarted int
	var child *actor.PID
	props := actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			started++
			child = c.Spawn(actor.PropsFromFunc(func(c actor.Context) {
				switch c.Message().(type) {
				case *actor.Started:
					childStarted++
				case string:
					c.Respond("child here")
				}
			}))
		case *messages.Crash:
			panic("injected")
		case string:
			c.Respond(child)
		}
	}, actor.WithGuardian(rootGuardian(zerolog.New(&lines))))
	root, err := sys.Root.SpawnNamed(props, "hc")
	if err != nil {
		t.Fatal(err)
	}

	sys.Root.Send(root, &messages.Crash{Reason: "injected"})
	res, err := sys.Root.RequestFuture(root, "child?", 10*time.Second).Result()
	if err != nil {
		t.Fatalf("the root after its crash: %v", err)
	}
	if _, err := sys.Root.RequestFuture(res.(*actor.PID), "ping",
		10*time.Second).Result(); err != nil {
		t.Fatalf("the child after its parent's crash: %v", err)
	}
	if started != 1 || childStarted != 1 {
		t.Errorf("root started %d times, child %d; want once each",
			started, childStarted)
	}
	if got := lines.String(); !strings.Contains(got, `"root_crashed_resuming"`) ||
		!strings.Contains(got, `"reason":"injected"`) {
		t.Errorf("log = %q, want the crash and its reason", got)
	}
}
