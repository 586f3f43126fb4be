package server

import (
	"mime"
	"testing"
)

func TestAttachment(t *testing.T) {
	for _, name := range []string{"acme-20261123T134220Z.trail-bundle.jsonl", `odd"name.csv`, "bürger.pdf", `back\slash.json`} {
		h := attachment(name)
		disp, params, err := mime.ParseMediaType(h)
		if err != nil || disp != "attachment" || params["filename"] != name {
			t.Errorf("attachment(%q) = %q: parses as %q %v, %v", name, h, disp, params, err)
		}
	}
	if got := attachment("a.csv"); got != `attachment; filename="a.csv"` {
		t.Errorf("plain name: %q", got)
	}
}
