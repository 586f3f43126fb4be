// Package loopback hands tests loopback TCP listeners on ports a restarted
// process can bind again.
//
// Port 0 picks from the kernel's ephemeral range, the same range outgoing
// connections of every other test process draw their local ports from. A
// test that closes such a listener to reopen the address later (a Raft node
// restarted at its configured address, a peer list written before the nodes
// start) can then find it taken by someone's client socket. Ports below the
// ephemeral range are only ever taken by an explicit bind, so a port chosen
// there stays free unless another test picks the same one.
package loopback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
)

// Below Linux's default ip_local_port_range (32768-60999) and above the
// ports services usually claim.
const (
	lowPort  = 20000
	highPort = 32768
)

// Listen binds 127.0.0.1 on a random port below the ephemeral range.
func Listen() (net.Listener, error) {
	var lastErr error
	for range 200 {
		port := lowPort + rand.IntN(highPort-lowPort)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("loopback: listen: %w", err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("loopback: no free port: %w", lastErr)
}

// Addr returns an address that was free a moment ago, for configuration
// that must name an address before its owner starts.
func Addr() (string, error) {
	ln, err := Listen()
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
