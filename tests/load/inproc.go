package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// statusTimeout bounds one status request to the manager.
const statusTimeout = 2 * time.Minute

// inproc runs the supervisor in this process: the service of
// actors.Start, with the Engine bridge talking to the coordinator's
// simulated Engine, and every prober wrapped by the recorder.
type inproc struct {
	s   *spec
	rec *recorder
	svc *actors.Service
	tel *actors.Telemetry
	// proxy counts the JSON-lines socket's clients, when it serves one.
	proxy *actors.ProxyStats
	// cfgs is the configured set; changed the set after the 10% change,
	// made when the change is (a server holds no second set while it
	// applies the first, so neither does the harness).
	cfgs, changed []messages.Config
}

func runInproc() error {
	s, err := readSpec()
	if err != nil {
		return err
	}
	p := &inproc{s: s, rec: newRecorder(s), cfgs: s.configs()}
	if err := p.start(); err != nil {
		return err
	}
	res, err := p.run()
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if serr := p.svc.Stop(stopCtx); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	return writeJSON(s.Result, res)
}

// start starts the service with no checks, and waits for the bridge's
// first fetch (an empty set) so that it cannot undo the checks sent next.
func (p *inproc) start() error {
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).
		With().Timestamp().Str("role", roleInproc).Logger()
	p.tel = actors.NewTelemetry()
	stats := &bridge.EdgeStats{}
	mcfg := actors.DefaultManagerConfig()
	mcfg.BatchDelay = p.s.BatchDelay
	mcfg.NotifyInterval = p.s.NotifyInterval
	mcfg.Logger = logger
	mcfg.NewProber = p.newProber
	edge := bridge.NewEdge(bridge.EdgeConfig{
		Engine:        bridge.NewEngineClient(p.s.Engine, 0),
		FetchInterval: time.Hour,
		Stats:         stats,
		Logger:        logger,
	})
	edges := []actors.Edge{{Name: "bridge", Props: edge}}
	if p.s.Proxy != "" {
		p.proxy = &actors.ProxyStats{}
		socket, err := actors.ListenProxy(actors.ProxyConfig{
			Path: p.s.ProxySocket, Stats: p.proxy, Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("listening on %s: %w", p.s.ProxySocket, err)
		}
		edges = append(edges, socket)
	}
	svc, err := actors.Start(actors.ServiceConfig{
		Manager:   mcfg,
		Edges:     edges,
		Logger:    logger,
		Telemetry: p.tel,
	})
	if err != nil {
		return err
	}
	p.svc = svc
	deadline := time.Now().Add(30 * time.Second)
	for stats.Fetches.Load() == 0 {
		if time.Now().After(deadline) {
			return errors.New("the bridge never fetched from the Engine")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The fetch's update leaves the bridge right after it is counted.
	time.Sleep(100 * time.Millisecond)
	_, err = p.status()
	return err
}

// newProber builds the real prober and wraps it in the recorder.
func (p *inproc) newProber(cfg *messages.Config) (actors.Prober, error) {
	pr, err := p.s.Probe.New(cfg)
	if err != nil {
		return nil, err
	}
	return &scheduledProber{next: pr, i: int(cfg.ID - 1), id: cfg.ID,
		iv: cfg.Interval, rec: p.rec}, nil
}

// status asks the manager for every check's status.
func (p *inproc) status() (*messages.StatusResponse, error) {
	res, err := p.svc.System().Root.RequestFuture(p.svc.Manager(),
		&messages.RequestStatus{}, statusTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("request status: %w", err)
	}
	sr, ok := res.(*messages.StatusResponse)
	if !ok {
		return nil, fmt.Errorf("request status: got %T", res)
	}
	return sr, nil
}

// update sends the manager a complete set of configs.
func (p *inproc) update(cfgs []messages.Config) {
	p.svc.System().Root.Send(p.svc.Manager(),
		&messages.UpdateConfigs{Configs: cfgs})
}

func (p *inproc) run() (designResult, error) {
	s := p.s
	res := designResult{Planned: s.plannedRate(), Apply: &applyResult{}}
	res.Empty = snapshotMem()

	if err := p.add(&res); err != nil {
		return res, err
	}
	t0 := time.Unix(0, p.rec.t0.Load())
	res.AllRan, res.AllRanOK = p.rec.waitAllRan(t0.Add(2*s.Interval + 5*time.Second))
	res.RanOnce = p.rec.ranOnce.Load()
	res.Burst = p.rec.burst()
	time.Sleep(time.Until(t0.Add(s.Interval)))
	res.Loaded = snapshotMem()
	writeHeapProfile(s, "supervisor")

	progress("supervisor: %d checks applied in %v, every one ran once after %v; "+
		"steady window of %v", s.N, res.Apply.Add.Round(time.Millisecond),
		res.AllRan.Round(time.Millisecond), s.Steady)
	lag0 := gatherLag(p.tel.Registry())
	res.Steady = steadyWindow(s, p.rec, "supervisor", selfSample)
	// Against the profile above, this one shows what the window allocated.
	writeHeapProfile(s, "supervisor-end")
	res.TelemetryLag = gatherLag(p.tel.Registry()).sub(lag0).summary()

	progress("supervisor: failing %d backends", s.Victims)
	var err error
	if res.Latency, err = p.latency(); err != nil {
		progress("supervisor: the latency not measured: %v", err)
	}
	if p.s.Proxy != "" && s.victimCount() > 0 {
		progress("supervisor: failing them again, with the split deployment's proxy")
		if res.SplitLatency, err = p.splitLatency(); err != nil {
			res.SplitError = err.Error()
			progress("supervisor: the split deployment not measured: %v", err)
		}
	}
	progress("supervisor: changing 10%% of the configs, then removing all")
	if err := p.change(res.Apply); err != nil {
		return res, err
	}
	return res, p.remove(res.Apply)
}

// add configures every check and times it.
func (p *inproc) add(res *designResult) error {
	stopProfile := startCPUProfile(p.s, "supervisor-add")
	t0 := time.Now()
	p.rec.configured(t0)
	p.update(p.cfgs)
	sr, err := p.status()
	stopProfile()
	if err != nil {
		return err
	}
	res.Apply.Add = time.Since(t0)
	if len(sr.Statuses) != p.s.N {
		return fmt.Errorf("after adding %d checks the manager has %d",
			p.s.N, len(sr.Statuses))
	}
	t1 := time.Now()
	if _, err := p.status(); err != nil {
		return err
	}
	res.Apply.StatusReply = time.Since(t1)
	return nil
}

// latency fails the victims' backends and waits until every victim has
// failed a probe and the notifications had time to reach the Engine. It
// returns nil when the run has no victims.
func (p *inproc) latency() (*latencyProbes, error) {
	s := p.s
	want := s.victimCount()
	if want == 0 {
		return nil, nil
	}
	failAt := time.Now()
	p.rec.rearmVictims(failAt)
	if err := controlBackends(s.Control, "fail", victimListeners(s)); err != nil {
		return nil, fmt.Errorf("failing the victims' backends: %w", err)
	}
	p.rec.waitVictims(want, failAt.Add(s.Interval+s.Timeout+2*time.Second))
	time.Sleep(2*s.BatchDelay + 500*time.Millisecond)
	return &latencyProbes{FailAt: failAt.UnixNano(), Want: want,
		Victims: p.rec.victims()}, nil
}

// splitLatency measures the latency phase again with the split
// deployment's proxy running (see split.go): it restores the victims'
// backends, waits until their checks are healthy again, starts the
// proxy and fails the backends anew. It is a phase of its own, so that
// the in-process measure carries none of the proxy's load. It returns
// why it measured nothing, if so.
func (p *inproc) splitLatency() (*latencyProbes, error) {
	s := p.s
	if err := controlBackends(s.Control, "restore", victimListeners(s)); err != nil {
		return nil, err
	}
	if err := p.waitVictimsHealthy(time.Now().Add(2*s.Interval + s.Timeout)); err != nil {
		return nil, err
	}
	split, err := startSplitProxy(s, p.tel, p.proxy)
	if err != nil {
		return nil, err
	}
	defer split.stop()
	lp, err := p.latency()
	if err != nil {
		return nil, err
	}
	split.drain(time.Now().Add(splitDrainTimeout))
	return lp, nil
}

// victimListeners returns the indexes of the TCP listeners the latency
// phase fails: the last s.Victims.
func victimListeners(s *spec) []int {
	var out []int
	for l := len(s.TCP) - s.Victims; l < len(s.TCP); l++ {
		out = append(out, l)
	}
	return out
}

// waitVictimsHealthy waits until every victim check is healthy, or
// deadline.
func (p *inproc) waitVictimsHealthy(deadline time.Time) error {
	for {
		sr, err := p.status()
		if err != nil {
			return err
		}
		down := 0
		for _, cs := range sr.Statuses {
			if p.s.isVictim(int(cs.ID-1)) && cs.Status.State != messages.StateHealthy {
				down++
			}
		}
		if down == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d victim checks still down after their backends came back", down)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// change gives every tenth check a new target and times until every
// changed check's status shows it; it then checks that the other checks
// kept their state and counters.
func (p *inproc) change(a *applyResult) error {
	before, err := p.status()
	if err != nil {
		return err
	}
	p.changed = make([]messages.Config, p.s.N)
	for i := range p.changed {
		p.changed[i] = p.cfgs[i]
		if i%10 == 0 {
			p.changed[i] = p.s.config(i, 1)
		}
	}
	stopProfile := startCPUProfile(p.s, "supervisor-change")
	defer stopProfile()
	t0 := time.Now()
	p.update(p.changed)
	var after *messages.StatusResponse
	for {
		if after, err = p.status(); err != nil {
			return err
		}
		if a.ChangeManager == 0 {
			a.ChangeManager = time.Since(t0)
		}
		if p.changeShows(after) {
			a.Change, a.ChangeOK = time.Since(t0), true
			break
		}
		if time.Since(t0) > 30*time.Second {
			a.Change = time.Since(t0)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kept(a, before, after)
	return nil
}

// changeShows reports whether every changed check's status reflects its
// new config: its state was reset, or its last probe went to the new
// target.
func (p *inproc) changeShows(sr *messages.StatusResponse) bool {
	for _, cs := range sr.Statuses {
		i := int(cs.ID - 1)
		if i%10 != 0 {
			continue
		}
		if cs.Status.State != messages.StateUnknown &&
			!strings.Contains(cs.Status.Message, p.changed[i].Target()) {
			return false
		}
	}
	return true
}

// kept counts the unchanged checks whose state and counters survived.
func (p *inproc) kept(a *applyResult, before, after *messages.StatusResponse) {
	was := make(map[uint64]messages.Status, len(before.Statuses))
	for _, cs := range before.Statuses {
		was[cs.ID] = cs.Status
	}
	for _, cs := range after.Statuses {
		if int(cs.ID-1)%10 == 0 {
			a.Changed++
			continue
		}
		a.KeptOf++
		b, now := was[cs.ID], cs.Status
		if b.State == now.State && now.Restarts == b.Restarts &&
			now.Successes+now.Failures >= b.Successes+b.Failures {
			a.Kept++
		} else if len(a.KeptBadSample) < 5 {
			a.KeptBadSample = append(a.KeptBadSample,
				fmt.Sprintf("%d: %v -> %v", cs.ID, b.State, now.State))
		}
	}
}

// remove removes every check and times until the status reply is empty
// and until every check actor has stopped.
func (p *inproc) remove(a *applyResult) error {
	t0 := time.Now()
	p.update(nil)
	sr, err := p.status()
	if err != nil {
		return err
	}
	a.Remove = time.Since(t0)
	if len(sr.Statuses) != 0 {
		return fmt.Errorf("after removing every check %d remain", len(sr.Statuses))
	}
	for time.Since(t0) < time.Minute {
		if liveChecks(p.tel.Registry()) == 0 {
			a.RemoveActors = time.Since(t0)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
