package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/netip"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// The credentials the RADIUS backend accepts, and the secret it shares
// with its clients.
const (
	radiusUser     = "demo"
	radiusPassword = "demo-password"
	radiusSecret   = "demo-secret"
)

// maxDatagram is the largest datagram the UDP echo server reads.
const maxDatagram = 65535

// listenUDP listens on an ephemeral UDP port of 127.0.0.1.
func listenUDP() (net.PacketConn, error) {
	return net.ListenPacket("udp4", "127.0.0.1:0")
}

// startUDPEcho starts a UDP server that sends every datagram back to its
// sender.
func startUDPEcho() (netip.AddrPort, func() error, error) {
	pc, err := listenUDP()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		echoDatagrams(pc)
	}()
	stop := func() error {
		err := pc.Close()
		<-done
		return err
	}
	return addrOf(pc.LocalAddr()), stop, nil
}

// echoDatagrams writes each datagram pc receives back to its sender, until
// pc is closed.
func echoDatagrams(pc net.PacketConn) {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		// NOTE: a reply that cannot be sent is the prober's problem: it
		// times out and says so.
		pc.WriteTo(buf[:n], from)
	}
}

// startRADIUS starts a RADIUS server that answers with answerRADIUS.
func startRADIUS() (netip.AddrPort, func() error, error) {
	pc, err := listenUDP()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	// NOTE: the server's own log is discarded: a request with the wrong
	// secret is dropped, and the check that sent it reports the timeout.
	srv := &radius.PacketServer{
		Handler:      radius.HandlerFunc(answerRADIUS),
		SecretSource: radius.StaticSecretSource([]byte(radiusSecret)),
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()

	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), backendStop)
		defer cancel()
		err := srv.Shutdown(ctx)
		// Shutdown closes only the connections Serve has begun to read;
		// this one may not be yet.
		pc.Close()
		if serr := <-done; !errors.Is(serr, radius.ErrServerShutdown) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return addrOf(pc.LocalAddr()), stop, nil
}

// answerRADIUS accepts an Access-Request for radiusUser with
// radiusPassword and rejects every other.
func answerRADIUS(w radius.ResponseWriter, r *radius.Request) {
	code := radius.CodeAccessReject
	if rfc2865.UserName_GetString(r.Packet) == radiusUser &&
		rfc2865.UserPassword_GetString(r.Packet) == radiusPassword {
		code = radius.CodeAccessAccept
	}
	// NOTE: as for the echo server, a reply that cannot be sent is
	// reported by the check that waits for it.
	w.Write(r.Response(code))
}
