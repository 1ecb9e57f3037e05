package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// TestBatching turns 12 checks healthy at once under BatchSize 5 and a
// long BatchDelay: two full batches go out as soon as they fill, and the
// remaining two notifications wait for the delay.
func TestBatching(t *testing.T) {
	const (
		batchSize  = 5
		batchDelay = 2 * time.Second
		checks     = 12
	)
	srv := startServer(t, serverOptions{BatchSize: batchSize, BatchDelay: batchDelay})
	up := startTCP(t, false)

	var configs []messages.Config
	var all []uint64
	for id := uint64(1); id <= checks; id++ {
		configs = append(configs, tcpConfig(id, up.addr))
		all = append(all, id)
	}
	c := dial(t, srv.path)
	c.update(configs...)
	c.waitFor(batchDelay+waitTimeout, "every check's notification", func() bool {
		return len(c.notes(0)) >= checks
	})

	seen := make(map[uint64]bool)
	for _, n := range c.notes(0) {
		if seen[n.ID] || n.Status.State != healthy {
			t.Errorf("notification %d %v: want one healthy notification per check",
				n.ID, n.Status.State)
		}
		seen[n.ID] = true
	}

	var sizes []int
	var at []time.Time
	for i, r := range c.got {
		if b, ok := r.msg.(*messages.NotificationBatch); ok {
			sizes = append(sizes, len(b.Notifications))
			at = append(at, c.got[i].at)
		}
	}
	want := []int{batchSize, batchSize, checks - 2*batchSize}
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("batch sizes in order = %v, want %v", sizes, want)
	}

	// The last batch was sent by its timer, armed by its first
	// notification after the second batch had gone out. Timers do not
	// fire early, so only a late delivery of the second batch can shorten
	// the gap; a batch sent for its size would follow at once.
	if gap := at[2].Sub(at[1]); gap < batchDelay/2 {
		t.Errorf("partial batch came %v after the second full one, want about %v",
			gap, batchDelay)
	}
}
