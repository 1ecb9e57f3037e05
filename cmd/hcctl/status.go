package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"

	"github.com/lbhealth/hcsupervisor/messages"
)

// statusFilter selects the checks status shows; a nil field selects all.
type statusFilter struct {
	state   *messages.State
	checker messages.CheckerType
	id      *uint64
}

// match reports whether cr passes the filter.
func (f *statusFilter) match(cr messages.CheckReport) bool {
	return (f.state == nil || cr.Status.State == *f.state) &&
		(f.checker == "" || cr.Checker == f.checker) &&
		(f.id == nil || cr.ID == *f.id)
}

// status runs "hcctl status": GET /status (or /status/{id}), filtered,
// as a table or as JSON.
func (c *cli) status(args []string) error {
	fs := c.flagSet("status",
		"[-state S] [-type T] [-id N] [-o table|json] [-addr A]")
	api := addAPIFlags(fs)
	state := fs.String("state", "",
		"show only checks in this state: healthy, unhealthy or unknown")
	checker := fs.String("type", "", "show only checks of this checker: "+
		orList(checkerNames()))
	id := fs.Uint64("id", 0, "show only the check of this ID")
	out := fs.String("o", "table", "output format: table or json")
	width := fs.Int("width", 0,
		"the table's width; 0: the terminal's, or 80 when there is none")
	if err := parse(fs, args); err != nil {
		return err
	}
	f, err := newStatusFilter(fs, *state, *checker, *id)
	if err != nil {
		return err
	}
	if err := oneOf("o", *out, "table", "json"); err != nil {
		return err
	}
	client, err := api.client()
	if err != nil {
		return err
	}

	all, err := fetchStatus(context.Background(), client, f.id)
	if err != nil {
		return err
	}
	shown := make([]messages.CheckReport, 0, len(all))
	for _, cr := range all {
		if f.match(cr) {
			shown = append(shown, cr)
		}
	}
	if *out == "json" {
		return writeJSON(c.stdout, &messages.StatusReport{Checks: shown})
	}
	if *width <= 0 {
		*width = c.width
	}
	return renderStatus(c.stdout, all, shown, c.now(), *width)
}

// newStatusFilter checks status's filter flags.
func newStatusFilter(fs *flag.FlagSet, state, checker string,
	id uint64) (*statusFilter, error) {
	f := &statusFilter{checker: messages.CheckerType(checker)}
	if state != "" {
		s, err := messages.ParseState(state)
		if err != nil {
			return nil, usagef("-state: want healthy, unhealthy or "+
				"unknown, got %q", state)
		}
		f.state = &s
	}
	if checker != "" && !slices.Contains(messages.CheckerTypes, f.checker) {
		return nil, usagef("-type: want %s, got %q",
			orList(checkerNames()), checker)
	}
	if isSet(fs, "id") {
		f.id = &id
	}
	return f, nil
}

// fetchStatus gets every check, or only check id when id is set.
func fetchStatus(ctx context.Context, client *apiClient,
	id *uint64) ([]messages.CheckReport, error) {
	if id == nil {
		var rep messages.StatusReport
		err := client.getJSON(ctx, "/status", "checks", &rep)
		return rep.Checks, err
	}
	res, err := client.get(ctx, fmt.Sprintf("/status/%d", *id))
	switch {
	case err != nil:
		return nil, err
	case res.code == http.StatusNotFound:
		return nil, fmt.Errorf("%w with id %d at %s", errNoCheck, *id,
			client.addr)
	case res.code != http.StatusOK:
		return nil, res.err()
	}
	var cr messages.CheckReport
	if err := res.decode("id", &cr); err != nil {
		return nil, err
	}
	return []messages.CheckReport{cr}, nil
}

// checkerNames lists the checker types as strings.
func checkerNames() []string {
	names := make([]string, len(messages.CheckerTypes))
	for i, t := range messages.CheckerTypes {
		names[i] = string(t)
	}
	return names
}
