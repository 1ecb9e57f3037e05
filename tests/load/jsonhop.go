package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/lbhealth/hcsupervisor/messages"
)

// hopBatch is the batch size of the JSON hop measurement: the
// supervisor's default batch_size.
const hopBatch = 100

// jsonHop is the cost of one notification crossing the JSON-lines socket
// of the split deployment: encoded by the server, decoded by the proxy.
type jsonHop struct {
	Batch          int
	NsPerNotif     float64
	AllocsPerNotif float64
	BytesPerNotif  float64
}

// measureJSONHop times messages.EncodeLine and DecodeLine of a full
// NotificationBatch, round after round for window, and counts the
// allocations they make.
func measureJSONHop(window time.Duration) jsonHop {
	batch := hopNotifications()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	rounds, size := 0, 0
	t0 := time.Now()
	for time.Since(t0) < window {
		line, err := messages.EncodeLine(batch)
		if err != nil {
			panic(err)
		}
		if _, err := messages.DecodeLine(line); err != nil {
			panic(err)
		}
		rounds, size = rounds+1, len(line)
	}
	el := time.Since(t0)
	runtime.ReadMemStats(&ms1)
	n := float64(rounds * hopBatch)
	return jsonHop{
		Batch:          hopBatch,
		NsPerNotif:     float64(el.Nanoseconds()) / n,
		AllocsPerNotif: float64(ms1.Mallocs-ms0.Mallocs) / n,
		BytesPerNotif:  float64(size) / hopBatch,
	}
}

// hopNotifications returns a batch of notifications as the supervisor
// sends them.
func hopNotifications() *messages.NotificationBatch {
	batch := &messages.NotificationBatch{}
	now := time.Now()
	for i := range hopBatch {
		batch.Notifications = append(batch.Notifications, messages.CheckStatus{
			ID: uint64(i) + 1<<48,
			Status: messages.Status{
				State: messages.StateHealthy,
				Message: fmt.Sprintf("TCP connect to 127.77.%d.%d:%d",
					i/250, i%250+1, 30000+i),
				LastCheck: now,
				Duration:  137 * time.Microsecond,
				Successes: 1234,
				Failures:  5,
			},
		})
	}
	return batch
}
