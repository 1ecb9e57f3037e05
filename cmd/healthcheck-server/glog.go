package main

import (
	"flag"
	"slices"
)

// glogIgnored are the logging flags Seesaw's seesaw_healthcheck takes
// from glog and this server ignores: it logs to stderr, in the form
// -log_format gives.
var glogIgnored = []string{"log_dir", "logtostderr", "alsologtostderr",
	"stderrthreshold", "vmodule", "log_backtrace_at"}

// glogFlags accepts Seesaw's glog flags, so that its command lines run
// unchanged (Seesaw's watchdog passes -log_dir). Only -v has an effect.
type glogFlags struct {
	// v is glog's verbosity: above 0, it means -log_level debug unless
	// -log_level is given.
	v int
	// ignored names the ignored flags given, as "-name".
	ignored []string
}

func (g *glogFlags) register(fs *flag.FlagSet) {
	const usage = "ignored: Seesaw's glog flag (logs go to stderr)"
	for _, name := range glogIgnored {
		switch name {
		case "logtostderr", "alsologtostderr":
			fs.Bool(name, false, usage)
		default:
			fs.String(name, "", usage)
		}
	}
	fs.IntVar(&g.v, "v", 0,
		"Seesaw's glog verbosity: above 0 means -log_level debug, "+
			"unless -log_level is given")
}

// apply notes the ignored flags fs was given, and sets cfg's log level
// from -v when -log_level was not given.
func (g *glogFlags) apply(fs *flag.FlagSet, cfg *config) {
	levelSet := false
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "log_level":
			levelSet = true
		case slices.Contains(glogIgnored, f.Name):
			g.ignored = append(g.ignored, "-"+f.Name)
		}
	})
	if g.v > 0 && !levelSet {
		cfg.logLevel = "debug"
	}
}
