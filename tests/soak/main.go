// Command soak runs the healthcheck server for a bounded time under
// config churn, injected faults, Engine restarts and reconnects of the
// split bridge, samples the process's live heap, RSS, goroutines and
// open files, and fails if any of them keeps growing (see judge) or if,
// at the end, a check's state in the simulated Engine differs from the
// truth. The churn starts once every check's state in the Engine is the
// truth; -duration must leave minSamples samples after -warmup (2m40s
// at the defaults). `make soak` runs it; every address it uses is on
// 127.0.0.0/8.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/actors"
	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
	"github.com/lbhealth/hcsupervisor/tests/faultinject"
)

type options struct {
	duration  time.Duration
	warmup    time.Duration
	checks    int
	backends  int
	interval  time.Duration
	sampleGap time.Duration
	profiles  string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute,
		"how long the churn runs, after the first convergence; at least "+
			"-warmup plus 10 samples (2m40s at the defaults)")
	flag.DurationVar(&o.warmup, "warmup", time.Minute,
		"how long into the churn samples are left out of the verdict")
	flag.IntVar(&o.checks, "checks", 10000, "checks configured")
	flag.IntVar(&o.backends, "backends", 200, "TCP backends the checks share")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "check interval")
	flag.DurationVar(&o.sampleGap, "sample", 10*time.Second, "time between samples")
	flag.StringVar(&o.profiles, "heap_profiles", "",
		"directory to write a heap profile into at each sample, named by "+
			"its second (compare two with go tool pprof -base)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "soak: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("soak: PASS")
}

// soak is one run: the fleet, the simulated Engine, the server and the
// split bridge.
type soak struct {
	o       options
	dir     string
	log     zerolog.Logger
	fleet   *fleet
	engine  *enginesim.Server
	server  *actors.Service
	bridge  *bridge.Split
	bridgeS *actorsSystem
	// telemetry measures the server's actors and checks, as in
	// production, and bridgeTel the bridge's; each sample gathers both.
	telemetry, bridgeTel *actors.Telemetry
	rng                  *rand.Rand
	nextID               uint64
	ids                  []uint64
	backend              map[uint64]int
}

func run(o options) error {
	if o.duration < minDuration(o) {
		return fmt.Errorf("-duration %v: want at least %v (-warmup %v, then "+
			"%d samples %v apart)", o.duration, minDuration(o), o.warmup,
			minSamples, o.sampleGap)
	}
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &soak{
		o:       o,
		dir:     dir,
		log:     zerolog.New(os.Stderr).Level(zerolog.ErrorLevel).With().Timestamp().Logger(),
		rng:     rand.New(rand.NewPCG(7, 11)),
		nextID:  1,
		backend: make(map[uint64]int),
	}
	if s.fleet, err = startFleet(o.backends); err != nil {
		return err
	}
	defer s.fleet.close()
	if err := s.start(); err != nil {
		return err
	}
	defer s.stop()

	// The warm-up ends when the Engine first holds the truth.
	if err := s.converge("before the churn"); err != nil {
		return err
	}
	samples, err := s.churn()
	if err != nil {
		return err
	}
	verdict := judge(samples, o.warmup)
	fmt.Print(verdict.table)
	if err := s.converge("after the churn"); err != nil {
		return err
	}
	return verdict.err
}

func (s *soak) engineSock() string { return filepath.Join(s.dir, "engine.sock") }
func (s *soak) serverSock() string { return filepath.Join(s.dir, "hc.sock") }

// start brings up the Engine with every check, the server and the bridge.
func (s *soak) start() error {
	cfg := enginesim.DefaultConfig()
	cfg.History = -1
	s.engine = enginesim.New(cfg)
	for range s.o.checks {
		s.addCheck()
	}
	if err := s.setChecks(); err != nil {
		return err
	}
	if err := s.engine.Listen(s.engineSock()); err != nil {
		return err
	}
	if err := s.startServer(); err != nil {
		return err
	}
	s.bridgeS = newActorsSystem(s.log)
	s.bridgeTel = actors.NewActorTelemetry()
	s.bridgeS.stopDeadLetters = s.bridgeTel.WatchDeadLetters(s.bridgeS.sys)
	split, err := bridge.StartSplit(s.bridgeS.sys,
		bridge.LinkConfig{Socket: s.serverSock(), ReconnectDelay: 100 * time.Millisecond,
			Logger: s.log},
		bridge.EdgeConfig{
			Engine:        bridge.NewEngineClient(s.engineSock(), 5*time.Second),
			FetchInterval: 5 * time.Second,
			RetryDelay:    500 * time.Millisecond,
			Logger:        s.log,
		}, s.bridgeTel.Wrap)
	s.bridge = split
	return err
}

func (s *soak) startServer() error {
	edge, err := actors.ListenProxy(actors.ProxyConfig{
		Path: s.serverSock(), EnableFaultInjection: true, Logger: s.log,
	})
	if err != nil {
		return err
	}
	mcfg := actors.DefaultManagerConfig()
	mcfg.NotifyInterval = 15 * time.Second
	mcfg.StateFile = filepath.Join(s.dir, "state.json")
	mcfg.Logger = s.log
	s.telemetry = actors.NewTelemetry()
	s.server, err = actors.Start(actors.ServiceConfig{
		Manager: mcfg, Edges: []actors.Edge{edge}, Logger: s.log,
		Telemetry: s.telemetry,
	})
	return err
}

func (s *soak) stop() {
	if s.bridge != nil {
		s.bridge.Stop()
		s.bridgeS.stopDeadLetters()
		s.bridgeS.sys.Shutdown()
	}
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.server.Stop(ctx)
	}
	if s.engine != nil {
		s.engine.Close()
	}
}

// addCheck configures one more check of a random backend.
func (s *soak) addCheck() {
	id := s.nextID
	s.nextID++
	s.ids = append(s.ids, id)
	s.backend[id] = s.rng.IntN(s.o.backends)
}

func (s *soak) setChecks() error {
	checks := make([]enginesim.Check, len(s.ids))
	for i, id := range s.ids {
		addr := s.fleet.addrs[s.backend[id]]
		checks[i] = enginesim.Check{
			ID: id, Type: "tcp", IP: addr.Addr().String(), Port: int(addr.Port()),
			Interval: s.o.interval, Timeout: time.Second,
		}
	}
	_, err := s.engine.SetChecks(checks)
	return err
}

// churn runs the disturbances for the soak's duration, sampling the
// process as it goes.
func (s *soak) churn() ([]sample, error) {
	inj, err := faultinject.Dial(s.serverSock())
	if err != nil {
		return nil, err
	}
	defer func() { inj.Close() }()
	var samples []sample
	start := time.Now()
	next := start
	for step := 0; time.Since(start) < s.o.duration; step++ {
		if time.Now().After(next) {
			if err := s.scrape(); err != nil {
				return nil, err
			}
			samples = append(samples, takeSample(time.Since(start)))
			next = next.Add(s.o.sampleGap)
			if err := s.writeHeapProfile(time.Since(start)); err != nil {
				return nil, err
			}
		}
		if err := s.disturb(step, &inj); err != nil {
			return nil, err
		}
		time.Sleep(time.Second) // NOTE: paces the disturbances.
	}
	inj.ClearAll()
	return samples, nil
}

// scrape gathers every metric, as Prometheus would, so that what the
// metrics keep is sampled with the rest.
func (s *soak) scrape() error {
	for _, tel := range []*actors.Telemetry{s.telemetry, s.bridgeTel} {
		if _, err := tel.Registry().Gather(); err != nil {
			return fmt.Errorf("gathering metrics: %w", err)
		}
	}
	return nil
}

// writeHeapProfile writes the heap's profile into -heap_profiles, if set,
// as heap-<second>.pb.gz.
func (s *soak) writeHeapProfile(at time.Duration) error {
	if s.o.profiles == "" {
		return nil
	}
	name := fmt.Sprintf("heap-%04d.pb.gz", int(at.Seconds()))
	f, err := os.Create(filepath.Join(s.o.profiles, name))
	if err != nil {
		return fmt.Errorf("-heap_profiles: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("-heap_profiles: %w", err)
	}
	return f.Close()
}

// disturb does one of the soak's disturbances, by the step's number.
func (s *soak) disturb(step int, inj **faultinject.Client) error {
	switch {
	case step%2 == 0:
		s.fleet.toggle(s.rng.IntN(s.o.backends))
	case step%7 == 3:
		// A tenth of the checks leave; as many new ones come.
		for range len(s.ids) / 10 {
			i := s.rng.IntN(len(s.ids))
			delete(s.backend, s.ids[i])
			s.ids = append(s.ids[:i], s.ids[i+1:]...)
			s.addCheck()
		}
		return s.setChecks()
	case step%11 == 5:
		// The Engine restarts.
		s.engine.Close()
		time.Sleep(2 * time.Second) // NOTE: the outage.
		return s.engine.Listen(s.engineSock())
	case step%13 == 9:
		// The server restarts under the split bridge, which reconnects.
		(*inj).Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.server.Stop(ctx)
		cancel()
		if err == nil {
			err = s.startServer()
		}
		if err != nil {
			return err
		}
		c, err := faultinject.Dial(s.serverSock())
		if err != nil {
			return err
		}
		*inj = c
	default:
		id := s.ids[s.rng.IntN(len(s.ids))]
		fault := messages.Faults[s.rng.IntN(len(messages.Faults))]
		if _, err := (*inj).Inject(id, fault, s.rng.IntN(3)+1); err != nil &&
			!strings.Contains(err.Error(), "no check") {
			return fmt.Errorf("inject: %w", err)
		}
	}
	return nil
}

// converge waits for every check's state in the Engine to be the truth;
// when says at which point of the soak, for its report.
func (s *soak) converge(when string) error {
	start := time.Now()
	truth := make(map[uint64]messages.State, len(s.ids))
	for _, id := range s.ids {
		truth[id] = messages.StateUnhealthy
		if s.fleet.up(s.backend[id]) {
			truth[id] = messages.StateHealthy
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.o.interval+time.Minute)
	defer cancel()
	var wrong int
	err := s.engine.WaitFor(ctx, func(snap *enginesim.Snapshot) bool {
		wrong = 0
		for id, want := range truth {
			if messages.State(snap.States[id].State) != want {
				wrong++
			}
		}
		return wrong == 0
	})
	if err != nil {
		return fmt.Errorf("%s: %d of %d checks never reached their true "+
			"state in the Engine", when, wrong, len(truth))
	}
	fmt.Printf("soak: %s: all %d checks' states in the Engine are the truth "+
		"after %v\n", when, len(truth), time.Since(start).Round(time.Second))
	return nil
}

// fleet is the TCP backends; a backend is up while it listens.
type fleet struct {
	mu    sync.Mutex
	addrs []netipAddrPort
	lns   []net.Listener
}

func startFleet(n int) (*fleet, error) {
	f := &fleet{addrs: make([]netipAddrPort, n), lns: make([]net.Listener, n)}
	for i := range n {
		// Spread over 127.0.x.y so no address runs short of ports.
		ip := fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return nil, err
		}
		f.lns[i] = ln
		f.addrs[i] = mustAddrPort(ln.Addr().String())
		go serve(ln)
	}
	return f, nil
}

func serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conn.Close()
	}
}

func (f *fleet) up(i int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lns[i] != nil
}

// toggle takes a backend down, or brings it back on its address.
func (f *fleet) toggle(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lns[i] != nil {
		f.lns[i].Close()
		f.lns[i] = nil
		return
	}
	ln, err := net.Listen("tcp", f.addrs[i].String())
	if err != nil {
		return // The port is taken for now; stays down, which is the truth.
	}
	f.lns[i] = ln
	go serve(ln)
}

func (f *fleet) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ln := range f.lns {
		if ln != nil {
			ln.Close()
			f.lns[i] = nil
		}
	}
}

// takeSample measures the process; it collects garbage first, so that
// the heap is what is live.
func takeSample(at time.Duration) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{
		at:         at,
		rss:        float64(statusKB("VmRSS")) / 1024,
		heap:       float64(ms.HeapAlloc) / (1 << 20),
		goroutines: float64(runtime.NumGoroutine()),
		fds:        float64(countFDs()),
	}
}

// statusKB reads a field of /proc/self/status, in KiB.
func statusKB(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	return 0
}

func countFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}
