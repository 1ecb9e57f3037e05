package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/lbhealth/hcsupervisor/bridge"
	"github.com/lbhealth/hcsupervisor/messages"
)

// fakeServerMain is the fake server's main. It accepts exactly the flags
// hcdemo passes to the real server, so a flag the server lacks fails. It
// serves the proxy protocol on -proxy_socket and, with -engine, is its
// own bridge, reporting every check healthy.
func fakeServerMain(mode string, args []string) int {
	fs := flag.NewFlagSet("fake-server", flag.ContinueOnError)
	socket := fs.String("proxy_socket", "", "")
	engine := fs.String("engine", "", "")
	for _, name := range []string{"metrics_addr", "log_format", "log_level"} {
		fs.String(name, "", "")
	}
	fs.Duration("notify_interval", 0, "")
	fetch := fs.Duration("fetch_interval", time.Second, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch mode {
	case "exit":
		return 3
	case "hang":
		// Listen only once SIGTERM is ignored, so a test can wait for it.
		signal.Ignore(syscall.SIGTERM)
		if _, err := net.Listen("unix", *socket); err != nil {
			return 1
		}
		time.Sleep(time.Hour)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if *socket != "" {
		ln, err := net.Listen("unix", *socket)
		if err != nil {
			return 1
		}
		f := startFake(ln)
		defer f.Close()
	}
	if *engine != "" {
		report := func(c []messages.Config) ([]messages.CheckStatus, error) {
			return healthy(c), nil
		}
		if err := fakeBridge(ctx, *engine, *fetch, report); err != nil {
			return 1
		}
	}
	<-ctx.Done()
	return 0
}

// fakeProxyMain is the fake proxy's main. It accepts exactly the flags
// hcdemo passes to the real proxy, and relays as the real one does: the
// Engine's checks to the server's socket, the server's notifications to
// the Engine.
func fakeProxyMain(mode string, args []string) int {
	fs := flag.NewFlagSet("fake-proxy", flag.ContinueOnError)
	engine := fs.String("engine_socket", "", "")
	server := fs.String("server_socket", "", "")
	fetch := fs.Duration("fetch_interval", time.Second, "")
	metrics := fs.String("metrics_addr", "unset", "")
	fs.String("log_format", "", "")
	fs.String("log_level", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *metrics != "" {
		fmt.Fprintln(os.Stderr, "fake-proxy: want -metrics_addr= (no listener)")
		return 2
	}
	if mode == "exit" {
		return 3
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	conn, err := net.Dial("unix", *server)
	if err != nil {
		return 1
	}
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	if _, err := readLine[*messages.Ready](sc); err != nil {
		return 1
	}
	relay := func(c []messages.Config) ([]messages.CheckStatus, error) {
		line, err := messages.EncodeLine(&messages.UpdateConfigs{Configs: c})
		if err != nil {
			return nil, err
		}
		if _, err := conn.Write(line); err != nil {
			return nil, err
		}
		b, err := readLine[*messages.NotificationBatch](sc)
		if err != nil {
			return nil, err
		}
		return b.Notifications, nil
	}
	if err := fakeBridge(ctx, *engine, *fetch, relay); err != nil {
		return 1
	}
	return 0
}

// readLine reads lines from sc until one decodes as a T.
func readLine[T any](sc *bufio.Scanner) (T, error) {
	for sc.Scan() {
		msg, err := messages.DecodeLine(sc.Bytes())
		if m, ok := msg.(T); ok && err == nil {
			return m, nil
		}
	}
	var zero T
	return zero, cmp.Or(sc.Err(), io.EOF)
}

// fakeBridge fetches the checks from the Engine at socket every interval
// until ctx ends, and tells the Engine the first status that report gives
// each check.
func fakeBridge(
	ctx context.Context, socket string, every time.Duration,
	report func([]messages.Config) ([]messages.CheckStatus, error),
) error {
	eng := bridge.NewEngineClient(socket, time.Second)
	reported := make(map[uint64]bool)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		checks, err := eng.Healthchecks(ctx)
		if err == nil {
			configs, _ := bridge.ToConfigs(checks)
			statuses, err := report(configs)
			if err != nil {
				return err
			}
			var fresh []messages.CheckStatus
			for _, cs := range statuses {
				if !reported[cs.ID] {
					reported[cs.ID] = true
					fresh = append(fresh, cs)
				}
			}
			if len(fresh) > 0 {
				eng.HealthState(ctx, fresh)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fakeServer serves the proxy protocol, reporting every configured check
// healthy. Updates receives every config set it is sent, if there is room.
type fakeServer struct {
	Updates chan []messages.Config

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// startFake serves on ln until Close.
func startFake(ln net.Listener) *fakeServer {
	f := &fakeServer{ln: ln, Updates: make(chan []messages.Config, 10)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.mu.Unlock()
			f.wg.Add(1)
			go f.serve(conn)
		}
	}()
	return f
}

// serve answers one client.
func (f *fakeServer) serve(conn net.Conn) {
	defer f.wg.Done()
	defer conn.Close()
	write := func(msg any) {
		line, _ := messages.EncodeLine(msg)
		conn.Write(line)
	}
	write(&messages.Ready{})
	var configs []messages.Config
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		msg, err := messages.DecodeLine(sc.Bytes())
		switch m := msg.(type) {
		case *messages.UpdateConfigs:
			configs = m.Configs
			select {
			case f.Updates <- configs:
			default:
			}
			write(&messages.NotificationBatch{Notifications: healthy(configs)})
		case *messages.RequestStatus:
			write(&messages.StatusResponse{Statuses: healthy(configs)})
		default:
			write(&messages.Error{Message: "fake: unexpected line: " +
				cmp.Or(err, errors.New("<nil>")).Error()})
		}
	}
}

// Close stops serving and waits for the fake's goroutines.
func (f *fakeServer) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// healthy returns a healthy status for each config.
func healthy(configs []messages.Config) []messages.CheckStatus {
	var out []messages.CheckStatus
	for _, c := range configs {
		out = append(out, messages.CheckStatus{ID: c.ID, Status: messages.Status{
			State:     messages.StateHealthy,
			Message:   "fake: " + c.String(),
			LastCheck: time.Now(),
			Successes: 1,
		}})
	}
	return out
}
