package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// FuzzWatcherLine feeds watch arbitrary lines from a server: none may
// panic it, and what it prints stays one line per status.
func FuzzWatcherLine(f *testing.F) {
	f.Add([]byte(`{"type":"ready"}`))
	f.Add([]byte(`{"type":"notification_batch","notifications":[{"id":1,` +
		`"status":{"state":"healthy","message":"a\nb","duration":"1ms"}}]}`))
	f.Add([]byte(`{"type":"status_response","statuses":[]}`))
	f.Add([]byte(`{"type":"error","message":"no"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var out bytes.Buffer
		w := &watcher{out: &out, errs: io.Discard, now: func() time.Time {
			return testNow
		}, loc: time.UTC, all: true, states: map[uint64]messages.State{}}
		w.line(line)
		msg, err := messages.DecodeLine(line)
		if err != nil {
			return
		}
		if b, ok := msg.(*messages.NotificationBatch); ok {
			if got := strings.Count(out.String(), "\n"); got !=
				len(b.Notifications) {
				t.Errorf("%d lines for %d notifications:\n%s", got,
					len(b.Notifications), &out)
			}
		}
	})
}

// FuzzRenderTree renders arbitrary trees: each actor must appear exactly
// once with -all, whatever its parent links.
func FuzzRenderTree(f *testing.F) {
	seed, err := json.Marshal(testTree())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"actors":[{"id":"a","parent":"b"},{"id":"b",` +
		`"parent":"a"},{"id":"a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rep messages.TreeReport
		if json.Unmarshal(data, &rep) != nil {
			return
		}
		unique := map[string]bool{}
		for _, a := range rep.Actors {
			unique[a.ID] = true
		}
		var out bytes.Buffer
		if err := renderTree(&out, &rep, true); err != nil {
			t.Fatal(err)
		}
		want := len(unique) + 2 // the header and the summary
		if len(unique) == 0 {
			want = 1
		}
		if got := strings.Count(out.String(), "\n"); got != want {
			t.Errorf("%d lines for %d actors, want %d:\n%s", got,
				len(unique), want, &out)
		}
	})
}
