// Package tests holds the end-to-end, fault and load suites: each test
// runs a whole server in-process, talks to it over its unix socket as a
// client would, and probes real backends listening on loopback.
package tests
