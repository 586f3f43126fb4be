package main

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// Runtime profiles are served on debug_addr, and only there.
func TestDebugAddrServesProfiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debug := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	p := startTraild(t, nil, append(loopbackFlags(dir), append(fastFlags(), "--debug-addr", debug)...)...)
	p.waitToken()
	for _, c := range []struct {
		url  string
		want int
	}{
		{"http://" + debug + "/debug/pprof/", http.StatusOK},
		{"http://" + debug + "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"http://" + p.addrs.HTTP + "/debug/pprof/", http.StatusNotFound},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %s, want %d", c.url, resp.Status, c.want)
		}
	}
}
