package loopback

import (
	"net"
	"strconv"
	"testing"
)

func TestListenBelowEphemeralRange(t *testing.T) {
	for range 20 {
		ln, err := Listen()
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		p, _ := strconv.Atoi(port)
		ln.Close()
		if p < lowPort || p >= highPort {
			t.Fatalf("port %d outside [%d, %d)", p, lowPort, highPort)
		}
	}
}

func TestAddrCanBeBoundAgain(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("rebind %s: %v", addr, err)
	}
	ln.Close()
}
