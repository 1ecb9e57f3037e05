package main

import (
	"context"
	"net/http"

	"github.com/lbhealth/hcsupervisor/messages"
)

// health runs "hcctl health": GET /healthz, printed; it fails with
// errUnhealthy unless the status is ok.
func (c *cli) health(args []string) error {
	fs := c.flagSet("health", "[-o text|json] [-addr A]")
	api := addAPIFlags(fs)
	out := fs.String("o", "text", "output format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := oneOf("o", *out, "text", "json"); err != nil {
		return err
	}
	client, err := api.client()
	if err != nil {
		return err
	}

	res, err := client.get(context.Background(), "/healthz")
	if err != nil {
		return err
	}
	// A supervisor in trouble may answer 503 with its report.
	var rep messages.HealthReport
	if err := res.decode("status", &rep); err != nil {
		if res.code != http.StatusOK {
			return res.err()
		}
		return err
	}
	if *out == "json" {
		err = writeJSON(c.stdout, &rep)
	} else {
		err = renderHealth(c.stdout, &rep, c.loc)
	}
	if err != nil {
		return err
	}
	if rep.Status != "ok" {
		return errUnhealthy
	}
	return nil
}
