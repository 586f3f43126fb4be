package server

import (
	"strings"
	"testing"
)

func TestNewTokenParses(t *testing.T) {
	for range 100 {
		id, secret, tok, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		gotID, gotSecret, err := parseToken(tok)
		if err != nil || gotID != id || gotSecret != secret {
			t.Fatalf("parseToken(%q) = %q, %q, %v; want %q, %q", tok, gotID, gotSecret, err, id, secret)
		}
	}
}

func TestParseToken(t *testing.T) {
	id := strings.Repeat("a", keyIDLen)
	secret := strings.Repeat("0", secretLen)
	good := tokenPrefix + id + "_" + secret
	for _, tc := range []struct {
		name, tok string
		ok        bool
	}{
		{"valid", good, true},
		{"empty", "", false},
		{"prefix only", tokenPrefix, false},
		{"wrong prefix", "trial_" + id + "_" + secret, false},
		{"uppercase prefix", "TRAIL_" + id + "_" + secret, false},
		{"uppercase hex", tokenPrefix + strings.ToUpper(id) + "_" + secret, false},
		{"missing separator", tokenPrefix + id + "x" + secret, false},
		{"short secret", tokenPrefix + id + "_" + secret[1:], false},
		{"long secret", good + "0", false},
		{"non-hex secret", tokenPrefix + id + "_" + "g" + secret[1:], false},
		{"underscore in id", tokenPrefix + "aaaaaaa_aaaaaaaa" + "_" + secret[1:] + "0", false},
		{"trailing newline", good[:len(good)-1] + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseToken(tc.tok)
			if (err == nil) != tc.ok {
				t.Fatalf("parseToken(%q): err = %v, want ok=%v", tc.tok, err, tc.ok)
			}
		})
	}
}

func TestParseBearer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"abc", "", false},
		{"", "", false},
	} {
		got, err := parseBearer(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseBearer(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseToken checks that the parser accepts exactly the canonical
// spelling: whatever it accepts is rebuilt byte for byte from its parts,
// and the parts are valid key ids and secrets.
func FuzzParseToken(f *testing.F) {
	_, _, tok, err := newToken()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("Bearer " + tok)
	f.Add(tokenPrefix + "_")
	f.Add("trail_0123456789abcdef_" + strings.Repeat("f", secretLen))
	f.Fuzz(func(t *testing.T, s string) {
		if tok, err := parseBearer(s); err == nil {
			s = tok
		}
		id, secret, err := parseToken(s)
		if err != nil {
			return
		}
		if tokenPrefix+id+"_"+secret != s {
			t.Fatalf("parseToken(%q) = %q, %q: does not rebuild the input", s, id, secret)
		}
		if !validKeyID(id) || len(secret) != secretLen || !isLowerHex(secret) {
			t.Fatalf("parseToken(%q) accepted a bad id %q or secret %q", s, id, secret)
		}
	})
}
