package bridge

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/lbhealth/hcsupervisor/messages"
)

// serveStatusLines serves a server's JSON-lines socket for a link: it
// says ready, then answers the n-th request_status (from 0) with the
// lines of replies[n], and nothing past the end. It returns the socket.
func serveStatusLines(t *testing.T, replies [][]any) string {
	t.Helper()
	return serveUnix(t, func(conn net.Conn) {
		write := func(msg any) bool {
			line, err := messages.EncodeLine(msg)
			if err != nil {
				t.Errorf("encoding %T: %v", msg, err)
				return false
			}
			conn.SetWriteDeadline(time.Now().Add(callBound))
			_, err = conn.Write(line)
			return err == nil
		}
		if !write(&messages.Ready{}) {
			return
		}
		sc := bufio.NewScanner(conn)
		for n := 0; sc.Scan(); {
			msg, err := messages.DecodeLine(sc.Bytes())
			if _, ok := msg.(*messages.RequestStatus); err != nil || !ok {
				continue
			}
			if n < len(replies) {
				for _, reply := range replies[n] {
					if !write(reply) {
						return
					}
				}
			}
			n++
		}
	})
}

// summary names a reply a status request got: the IDs of a status
// response, or the text of an error.
func summary(res any, err error) string {
	switch r := res.(type) {
	case *messages.StatusResponse:
		var ids []string
		for _, cs := range r.Statuses {
			ids = append(ids, fmt.Sprint(cs.ID))
		}
		return "status " + strings.Join(ids, ",")
	case *messages.Error:
		return "error " + r.Message
	}
	return fmt.Sprintf("%T %v", res, err)
}

// Status requests get their answers in order, whether the server answers
// one with a status response or with an error line.
func TestLinkAnswersStatusRequestsInOrder(t *testing.T) {
	status := func(id uint64) *messages.StatusResponse {
		return &messages.StatusResponse{
			Statuses: []messages.CheckStatus{healthy(id, "up")},
		}
	}
	failed := &messages.Error{Message: "request_status: timed out"}
	id := uint64(7)
	rejected := &messages.Error{Message: "interval: must be positive", ID: &id}

	tests := []struct {
		name string
		// replies answer the link's own request at connecting, then
		// each asker's.
		replies [][]any
		want    []string
	}{{
		name:    "statuses",
		replies: [][]any{{status(0)}, {status(1)}, {status(2)}},
		want:    []string{"status 1", "status 2"},
	}, {
		name:    "an asker's request fails",
		replies: [][]any{{status(0)}, {failed}, {status(2)}},
		want:    []string{"error " + failed.Message, "status 2"},
	}, {
		name:    "the link's own request fails",
		replies: [][]any{{failed}, {status(1)}, {status(2)}},
		want:    []string{"status 1", "status 2"},
	}, {
		name:    "another error in between",
		replies: [][]any{{status(0)}, {rejected, status(1)}, {status(2)}},
		want:    []string{"status 1", "status 2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := newTestSystem(t)
			defer sys.Shutdown()
			link := sys.Root.Spawn(NewLink(LinkConfig{
				Socket: serveStatusLines(t, tt.replies),
				Logger: zerolog.New(zerolog.NewTestWriter(t)),
			}))
			defer func() { sys.Root.StopFuture(link).Wait() }()

			var got []string
			for _, f := range []*actor.Future{
				sys.Root.RequestFuture(link, &messages.RequestStatus{}, callBound),
				sys.Root.RequestFuture(link, &messages.RequestStatus{}, callBound),
			} {
				got = append(got, summary(f.Result()))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("askers got %q, want %q", got, tt.want)
			}
		})
	}
}

// The link's own status request at connecting reaches the Sink as a
// periodic batch, without the statuses that a notification passed on
// meanwhile made old, and without unknown ones.
func TestLinkPassesOnItsSnapshotAsPeriodic(t *testing.T) {
	change := &messages.NotificationBatch{Notifications: []messages.CheckStatus{
		statusAt(7, messages.StateUnhealthy, 2),
	}}
	snapshot := &messages.StatusResponse{Statuses: []messages.CheckStatus{
		statusAt(7, messages.StateHealthy, 1),
		statusAt(8, messages.StateHealthy, 1),
		statusAt(9, messages.StateUnknown, 0),
	}}
	sys := newTestSystem(t)
	defer sys.Shutdown()
	batches := make(chan *messages.NotificationBatch, 4)
	sink := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if b, ok := c.Message().(*messages.NotificationBatch); ok {
			batches <- b
		}
	}))
	link := sys.Root.Spawn(NewLink(LinkConfig{
		Socket: serveStatusLines(t, [][]any{{change, snapshot}}),
		Sink:   sink,
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	}))
	defer func() { sys.Root.StopFuture(link).Wait() }()

	want := []*messages.NotificationBatch{change, {
		Notifications: []messages.CheckStatus{statusAt(8, messages.StateHealthy, 1)},
		Periodic:      true,
	}}
	for i, w := range want {
		select {
		case got := <-batches:
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("batch %d (-want +got):\n%s", i, diff)
			}
		case <-time.After(callBound):
			t.Fatalf("batch %d never reached the sink", i)
		}
	}
}

// A server that accepts the connection but never says ready is left
// after ReadyTimeout and dialled again.
func TestLinkLeavesAServerThatIsNeverReady(t *testing.T) {
	socket, accepted := serveHung(t)
	sys := newTestSystem(t)
	defer sys.Shutdown()
	link := sys.Root.Spawn(NewLink(LinkConfig{
		Socket:         socket,
		ReadyTimeout:   50 * time.Millisecond,
		ReconnectDelay: 10 * time.Millisecond,
		Logger:         zerolog.New(zerolog.NewTestWriter(t)),
	}))
	defer func() { sys.Root.StopFuture(link).Wait() }()

	for i := range 2 {
		select {
		case <-accepted:
		case <-time.After(callBound):
			t.Fatalf("connection %d never came", i+1)
		}
	}
}
