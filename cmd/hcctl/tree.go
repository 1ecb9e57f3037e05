package main

import (
	"context"

	"github.com/lbhealth/hcsupervisor/messages"
)

// tree runs "hcctl tree": GET /tree, as an indented tree or as JSON.
func (c *cli) tree(args []string) error {
	fs := c.flagSet("tree", "[-all] [-o text|json] [-addr A]")
	api := addAPIFlags(fs)
	all := fs.Bool("all", false, "list every check actor; without it, "+
		"each parent shows its first 10")
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

	var rep messages.TreeReport
	if err := client.getJSON(context.Background(), "/tree", "actors",
		&rep); err != nil {
		return err
	}
	if *out == "json" {
		return writeJSON(c.stdout, &rep)
	}
	return renderTree(c.stdout, &rep, *all)
}
