package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/lbhealth/hcsupervisor/bridge/enginesim"
)

func TestPlan(t *testing.T) {
	pl := testPlan(t)

	all := names(pl.All())
	sorted := slices.Sorted(slices.Values(all))
	if len(slices.Compact(sorted)) != len(all) {
		t.Errorf("check names are not unique: %s", strings.Join(all, ", "))
	}
	for _, c := range pl.All() {
		if !strings.Contains(c.Desc, "127.0.0.1") {
			t.Errorf("%s: description %q lacks the backend", c.Name, c.Desc)
		}
	}

	// Every type the server runs, as the Engine spells it.
	types := make(map[string]bool)
	for _, c := range pl.Initial {
		types[c.Check.Type] = true
	}
	for _, typ := range []string{
		enginesim.TypeTCP, enginesim.TypeHTTP, enginesim.TypeHTTPS,
		enginesim.TypeDNS, enginesim.TypeUDP, enginesim.TypeRADIUS,
		enginesim.TypeICMP,
	} {
		if !types[typ] {
			t.Errorf("no initial check of type %s", typ)
		}
	}

	initial := names(pl.Initial)
	if !slices.Contains(initial, pl.Remove) {
		t.Errorf("Remove %q is not an initial check", pl.Remove)
	}
	if slices.Contains(initial, pl.Add.Name) {
		t.Errorf("Add %q is already an initial check", pl.Add.Name)
	}
	changed := names(pl.Changed())
	if slices.Contains(changed, pl.Remove) ||
		!slices.Contains(changed, pl.Add.Name) ||
		len(changed) != len(initial) {
		t.Errorf("Changed: got %v, want the initial checks without %s, "+
			"with %s", changed, pl.Remove, pl.Add.Name)
	}
}

func TestDescriptions(t *testing.T) {
	pl := testPlan(t)
	want := map[string]string{
		"tcp-echo":          "tcp 127.0.0.1:1",
		"http-ok":           "http GET /healthz 127.0.0.1:3",
		"https-self-signed": "https GET /healthz 127.0.0.1:6",
		"dns-ok":            "dns demo.test. A 127.0.0.1:7",
		"udp-echo":          "udp 127.0.0.1:8",
		"radius-ok":         "radius 127.0.0.1:9",
		"icmp-loopback":     "icmp 127.0.0.1",
		"tls-handshake":     "tls 127.0.0.1:6",
	}
	for _, c := range pl.All() {
		if w, ok := want[c.Name]; ok && c.Desc != w {
			t.Errorf("%s: got %q, want %q", c.Name, c.Desc, w)
		}
	}
}
