package tests

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
	"github.com/lbhealth/hcsupervisor/messages"
)

// TestEngineAbsentAtStart starts the bridge before the Engine's socket
// exists: the bridge keeps trying, and the checks start once the Engine
// appears.
func TestEngineAbsentAtStart(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		up := startTCP(t, false)
		sim, sock := newEngine(t, enginesim.Config{Logger: newLogger(t)})
		ids := setEngineChecks(t, sim,
			engineCheck(enginesim.TypeTCP, up.addr),
			engineCheck(enginesim.TypeTCP, refusedAddr(t)),
		)
		stack := mode.start(t, sock, stackOptions{})

		eventually(t, waitTimeout, "fetches to fail", func() bool {
			return stack.stats.FetchErrors.Load() >= 2
		})
		if truth := stack.truth(t); len(truth) != 0 {
			t.Errorf("server runs %d checks before any fetch, want none", len(truth))
		}

		listenEngine(t, sim, sock)
		waitEngine(t, sim, "the checks' states",
			statesAre(map[uint64]messages.State{ids[0]: healthy, ids[1]: unhealthy}))
		checkEngineHasTruth(t, sim, stack.truth(t))
	})
}

// TestEngineOutage takes the Engine down for longer than max_failures ×
// retry_delay while backends change state, before and after the bridge
// gives the alarm, and brings it back: the Engine must end with every
// check's true state, and hear again of every check, changed or not.
func TestEngineOutage(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		stays := startHTTP(t, 200)
		fails := startHTTP(t, 200)
		recovers := startHTTP(t, 503)
		blips := startHTTP(t, 200)
		up := startTCP(t, false)
		backends := []*httpBackend{stays, fails, recovers, blips}

		sim, sock := startEngine(t)
		var checks []enginesim.Check
		for _, b := range backends {
			c := engineCheck(enginesim.TypeHTTP, b.addr)
			c.Send = "/healthz"
			checks = append(checks, c)
		}
		checks = append(checks,
			engineCheck(enginesim.TypeTCP, up.addr),
			engineCheck(enginesim.TypeTCP, refusedAddr(t)))
		ids := setEngineChecks(t, sim, checks...)
		staysID, failsID, recoversID, blipsID, upID, refusedID :=
			ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]

		var alarms atomic.Int32
		var alarm atomic.Pointer[error]
		stack := mode.start(t, sock, stackOptions{
			OnMaxFailures: func(err error) {
				alarms.Add(1)
				alarm.Store(&err)
			},
		})
		waitEngine(t, sim, "the first states", statesAre(map[uint64]messages.State{
			staysID: healthy, failsID: healthy, recoversID: unhealthy,
			blipsID: healthy, upID: healthy, refusedID: unhealthy,
		}))

		if err := sim.Close(); err != nil {
			t.Fatalf("closing the Engine: %v", err)
		}
		closedAt := time.Now()

		// Changes before the alarm, one of them undone.
		fails.setCode(503)
		blips.setCode(503)
		stack.waitTruth(t, "the failures", truthStatesAre(map[uint64]messages.State{
			failsID: unhealthy, blipsID: unhealthy,
		}))
		blips.setCode(200)
		stack.waitTruth(t, "the blip's recovery", truthStatesAre(map[uint64]messages.State{
			blipsID: healthy,
		}))
		eventually(t, waitTimeout, "the bridge's alarm", stack.stats.Unreachable.Load)

		// A change while the bridge backs off.
		recovers.setCode(200)
		stack.waitTruth(t, "the recovery", truthStatesAre(map[uint64]messages.State{
			recoversID: healthy,
		}))
		failed := stack.stats.HealthStateErr.Load()
		eventually(t, waitTimeout, "retries with backoff", func() bool {
			return stack.stats.HealthStateErr.Load() >= failed+2
		})
		if down := time.Since(closedAt); down <= engineMaxFailures*engineRetryDelay {
			t.Fatalf("the Engine was down %v, want longer than %d × %v",
				down, engineMaxFailures, engineRetryDelay)
		}

		backAt := time.Now()
		listenEngine(t, sim, sock)
		want := map[uint64]messages.State{
			staysID: healthy, failsID: unhealthy, recoversID: healthy,
			blipsID: healthy, upID: healthy, refusedID: unhealthy,
		}
		waitEngine(t, sim, "every check's true state, told again after the outage",
			func(s *enginesim.Snapshot) bool {
				return statesAre(want)(s) && notifiedSince(backAt, ids...)(s)
			})
		checkEngineHasTruth(t, sim, stack.truth(t))

		eventually(t, waitTimeout, "the bridge to clear its alarm", func() bool {
			return !stack.stats.Unreachable.Load() && stack.stats.Pending.Load() == 0
		})
		if got := alarms.Load(); got != 1 {
			t.Errorf("OnMaxFailures called %d times, want once", got)
		}
		if err := alarm.Load(); err != nil && !strings.Contains((*err).Error(), "HealthState") {
			t.Errorf("OnMaxFailures error %q, want it to name HealthState", *err)
		}
	})
}

// TestEngineHealthStateErrors makes the Engine answer HealthState with
// errors, fewer times in a row than max_failures, while backends change
// state, then heals it: the bridge retries, and the Engine ends with the
// truth without the bridge giving the alarm.
func TestEngineHealthStateErrors(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		fails := startHTTP(t, 200)
		recovers := startHTTP(t, 503)
		up := startTCP(t, false)

		sim, sock := startEngine(t)
		failsCheck := engineCheck(enginesim.TypeHTTP, fails.addr)
		recoversCheck := engineCheck(enginesim.TypeHTTP, recovers.addr)
		ids := setEngineChecks(t, sim, failsCheck, recoversCheck,
			engineCheck(enginesim.TypeTCP, up.addr))
		failsID, recoversID, upID := ids[0], ids[1], ids[2]

		var alarms atomic.Int32
		stack := mode.start(t, sock, stackOptions{
			MaxFailures:   1000,
			OnMaxFailures: func(error) { alarms.Add(1) },
		})
		waitEngine(t, sim, "the first states", statesAre(map[uint64]messages.State{
			failsID: healthy, recoversID: unhealthy, upID: healthy,
		}))

		errorsBefore := sim.Counts().Errors
		sim.SetHealthStateError("engine busy")
		fails.setCode(503)
		recovers.setCode(200)
		stack.waitTruth(t, "the changes", truthStatesAre(map[uint64]messages.State{
			failsID: unhealthy, recoversID: healthy,
		}))
		waitEngine(t, sim, "refused calls", func(s *enginesim.Snapshot) bool {
			return s.Counts.Errors >= errorsBefore+3
		})
		// The refused calls told the Engine nothing.
		if got := sim.States(); messages.State(got[failsID].State) != healthy ||
			messages.State(got[recoversID].State) != unhealthy {
			t.Fatalf("the Engine recorded states of refused calls:\n%s",
				dumpEngineStates(got))
		}

		sim.SetHealthStateError("")
		waitEngine(t, sim, "the changed states", statesAre(map[uint64]messages.State{
			failsID: unhealthy, recoversID: healthy, upID: healthy,
		}))
		checkEngineHasTruth(t, sim, stack.truth(t))
		if got := stack.stats.HealthStateErr.Load(); got < 3 {
			t.Errorf("bridge counted %d failed calls, want at least 3", got)
		}
		if got := alarms.Load(); got != 0 || stack.stats.Unreachable.Load() {
			t.Errorf("OnMaxFailures called %d times below max_failures, want none", got)
		}
	})
}

// TestEngineFetchErrorsKeepChecks makes the Engine answer Healthchecks
// with errors: the server keeps running the last set it was given, and
// takes the Engine's next set once it answers again.
func TestEngineFetchErrorsKeepChecks(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode engineMode) {
		first := startTCP(t, false)
		second := startTCP(t, false)

		sim, sock := startEngine(t)
		firstCheck := engineCheck(enginesim.TypeTCP, first.addr)
		ids := setEngineChecks(t, sim, firstCheck)
		stack := mode.start(t, sock, stackOptions{})
		waitEngine(t, sim, "the first state",
			statesAre(map[uint64]messages.State{ids[0]: healthy}))

		sim.SetHealthchecksError("engine busy")
		// The next set waits behind the failing fetches.
		ids = setEngineChecks(t, sim, engineCheck(enginesim.TypeTCP, second.addr))
		failed := stack.stats.FetchErrors.Load()
		eventually(t, waitTimeout, "failed fetches", func() bool {
			return stack.stats.FetchErrors.Load() >= failed+3
		})
		probes := first.accepted.Load()
		eventually(t, waitTimeout, "the first check to go on probing", func() bool {
			return first.accepted.Load() > probes+1
		})
		if second.accepted.Load() != 0 {
			t.Errorf("the second check ran before the Engine served it")
		}

		sim.SetHealthchecksError("")
		waitEngine(t, sim, "the second check's state",
			statesAre(map[uint64]messages.State{ids[0]: healthy}))
		waitQuiet(t, "the first check's probes to stop",
			func() int { return int(first.accepted.Load()) }, 3*checkInterval)
		checkEngineHasTruth(t, sim, stack.truth(t))
	})
}

// TestEngineServerRestartUnderSplit stops the server under the split
// bridge and starts a new one on its socket: the link reconnects and
// sends the configs at once, without a new fetch, and the Engine hears
// the new server's states.
func TestEngineServerRestartUnderSplit(t *testing.T) {
	stays := startHTTP(t, 200)
	fails := startHTTP(t, 200)
	up := startTCP(t, false)

	sim, sock := startEngine(t)
	ids := setEngineChecks(t, sim,
		engineCheck(enginesim.TypeHTTP, stays.addr),
		engineCheck(enginesim.TypeHTTP, fails.addr),
		engineCheck(enginesim.TypeTCP, up.addr),
		engineCheck(enginesim.TypeTCP, refusedAddr(t)),
	)
	staysID, failsID, upID, refusedID := ids[0], ids[1], ids[2], ids[3]
	// One fetch only: the new server can get its configs from the link
	// alone.
	stack := splitMode.start(t, sock, stackOptions{FetchInterval: time.Hour})
	waitEngine(t, sim, "the first states", statesAre(map[uint64]messages.State{
		staysID: healthy, failsID: healthy, upID: healthy, refusedID: unhealthy,
	}))
	fetches := sim.Counts().Healthchecks

	stack.stopServer(t)
	fails.setCode(503)
	restartAt := time.Now()
	stack.restartServer(t)

	waitEngine(t, sim, "the new server's states", func(s *enginesim.Snapshot) bool {
		return notifiedSince(restartAt, ids...)(s) &&
			statesAre(map[uint64]messages.State{
				staysID: healthy, failsID: unhealthy, upID: healthy,
				refusedID: unhealthy,
			})(s)
	})
	checkEngineHasTruth(t, sim, stack.truth(t))
	if got := sim.Counts().Healthchecks; got != fetches {
		t.Errorf("the Engine served %d fetches, want %d: the link must resend "+
			"the configs it has", got, fetches)
	}
	// The new server's checks are new: their counters began again.
	for id, st := range stack.truth(t) {
		if st.LastCheck.Before(restartAt) {
			t.Errorf("check %d: last check %v, before the restart at %v",
				id, st.LastCheck, restartAt)
		}
	}
}

// TestEngineHangs makes the Engine hold every call without answering:
// the bridge's calls end at their deadline and are retried, and once the
// Engine answers again it gets the state that changed meanwhile.
func TestEngineHangs(t *testing.T) {
	const rpcTimeout = 200 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode engineMode) {
		fails := startHTTP(t, 200)
		up := startTCP(t, false)

		sim, sock := startEngine(t)
		ids := setEngineChecks(t, sim,
			engineCheck(enginesim.TypeHTTP, fails.addr),
			engineCheck(enginesim.TypeTCP, up.addr))
		failsID, upID := ids[0], ids[1]
		stack := mode.start(t, sock, stackOptions{RPCTimeout: rpcTimeout})
		waitEngine(t, sim, "the first states", statesAre(map[uint64]messages.State{
			failsID: healthy, upID: healthy,
		}))

		sim.SetHang(true)
		fails.setCode(503)
		stack.waitTruth(t, "the failure", truthStatesAre(map[uint64]messages.State{
			failsID: unhealthy,
		}))
		failed := stack.stats.HealthStateErr.Load()
		eventually(t, waitTimeout, "hung calls to time out", func() bool {
			return stack.stats.HealthStateErr.Load() >= failed+2
		})
		if got := messages.State(sim.States()[failsID].State); got != healthy {
			t.Fatalf("the Engine recorded %v while hanging", got)
		}

		sim.SetHang(false)
		waitEngine(t, sim, "the failure", statesAre(map[uint64]messages.State{
			failsID: unhealthy, upID: healthy,
		}))
		checkEngineHasTruth(t, sim, stack.truth(t))
	})
}

// TestEngineSplitBridgeRestart restarts the split bridge (the
// healthcheck-proxy process) while the server keeps running and a backend
// fails in between: the Engine must hear of the failure from the new
// bridge, not only at the next periodic full status.
func TestEngineSplitBridgeRestart(t *testing.T) {
	fails := startHTTP(t, 200)
	up := startTCP(t, false)

	sim, sock := startEngine(t)
	ids := setEngineChecks(t, sim,
		engineCheck(enginesim.TypeHTTP, fails.addr),
		engineCheck(enginesim.TypeTCP, up.addr))
	failsID, upID := ids[0], ids[1]
	// The periodic full status, a minute away, cannot heal the gap.
	stack := splitMode.start(t, sock, stackOptions{})
	waitEngine(t, sim, "the first states", statesAre(map[uint64]messages.State{
		failsID: healthy, upID: healthy,
	}))

	stack.stopBridge(t)
	fails.setCode(503)
	stack.waitTruth(t, "the failure", truthStatesAre(map[uint64]messages.State{
		failsID: unhealthy,
	}))
	stack.startBridge(t)

	waitEngine(t, sim, "the failure, told by the new bridge",
		statesAre(map[uint64]messages.State{failsID: unhealthy, upID: healthy}))
	checkEngineHasTruth(t, sim, stack.truth(t))
}
