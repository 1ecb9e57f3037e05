// Package enginesim simulates the part of a Seesaw Engine that Seesaw's
// healthcheck component talks to: its net/rpc service on a unix socket.
//
// A Server serves SeesawEngine.Healthchecks and SeesawEngine.HealthState
// as the Engine does, builds its checks from Checks the way the Engine
// builds them from its cluster config, records what it is told, and can
// fail or hang on demand so that tests can exercise a client's error
// paths.
package enginesim
