// Package siem turns Trail's stored entries into the records security
// information and event management systems ingest, and delivers them.
//
// It owns two record formats, OCSF-shaped JSON (the Open Cybersecurity
// Schema Framework's event classes) and ArcSight CEF, and two kinds of
// sink: syslog over TCP or TLS (RFC 5424 messages, octet-counted as RFC
// 6587 and RFC 5425 frame them) and an HTTP webhook whose bodies are signed
// with HMAC-SHA256. It knows nothing of where entries come from: the
// forwarder in trailctl reads them from the log's Tail stream.
//
// Every record carries the entry's place in the log (tenant, partition,
// leaf) and its event id, so a SIEM can deduplicate the records a
// forwarder resends after a crash and an auditor can fetch the proof of
// any record back from Trail.
package siem

import (
	"encoding/json"
	"fmt"
	"strings"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Format names a record format.
type Format string

const (
	FormatOCSF Format = "ocsf"
	FormatCEF  Format = "cef"
)

// ParseFormat reads a format name as an operator writes it.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatOCSF, FormatCEF:
		return f, nil
	}
	return "", fmt.Errorf("siem: unknown format %q: ocsf or cef", s)
}

// Render renders one stored entry in format f: one JSON object for OCSF,
// one CEF line for CEF, without a trailing newline.
func Render(f Format, se *trailv1.StoredEntry, product Product) ([]byte, error) {
	if se.GetPruned() || se.GetEntry().GetEvent() == nil {
		return nil, fmt.Errorf("siem: entry %s/%d has no event (pruned entries are not forwarded)", se.GetPartition(), se.GetLeafIndex())
	}
	switch f {
	case FormatOCSF:
		return json.Marshal(ocsfOf(se, product))
	case FormatCEF:
		return []byte(cefOf(se, product)), nil
	}
	return nil, fmt.Errorf("siem: unknown format %q", f)
}

// RecordOf renders se in format f as a Record for a sink: the body, the
// sequencer time, and whether syslog should flag it (the events whose
// severity is above informational: refused, failed and security events).
func RecordOf(f Format, se *trailv1.StoredEntry, product Product) (Record, error) {
	body, err := Render(f, se, product)
	if err != nil {
		return Record{}, err
	}
	ev := se.GetEntry().GetEvent()
	sev, _ := severityOf(ev.GetCategory(), ev.GetOutcome())
	return Record{Body: body, Time: se.GetEntry().GetSequencerTime().AsTime(), Warning: sev > 1}, nil
}

// Product names what emits the records (OCSF metadata.product, the CEF
// header's vendor, product and version).
type Product struct {
	Vendor, Name, Version string
}

// DefaultProduct is Trail's own name.
var DefaultProduct = Product{Vendor: "Trail", Name: "traild", Version: "1"}

// class is where a Trail category sits in OCSF: the category and class
// uids, and the activity a Trail outcome cannot tell.
type class struct {
	categoryUID, classUID int
	name                  string
}

// Trail's categories are application audit events; OCSF models most of
// them as API Activity (6003, in Application Activity). Authentication
// and changes of access rights have IAM classes of their own.
var (
	classAuthentication = class{3, 3002, "Authentication"}
	classAccess         = class{3, 3005, "User Access Management"}
	classAPI            = class{6, 6003, "API Activity"}
)

func classOf(c trailv1.Category) class {
	switch c {
	case trailv1.Category_CATEGORY_AUTHENTICATION:
		return classAuthentication
	case trailv1.Category_CATEGORY_AUTHORIZATION:
		return classAccess
	}
	return classAPI
}

// activityOf picks the class's activity from the action's words; 99 is
// OCSF's "Other" where they say nothing it defines.
func activityOf(cl class, cat trailv1.Category, action string) (int, string) {
	words := strings.FieldsFunc(strings.ToLower(action), func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == ':' || r == '/' })
	has := func(ws ...string) bool {
		for _, w := range words {
			for _, x := range ws {
				if w == x {
					return true
				}
			}
		}
		return false
	}
	switch cl.classUID {
	case 3002:
		switch {
		case has("logout", "logoff", "signout"):
			return 2, "Logoff"
		case has("login", "logon", "signin", "authenticate"):
			return 1, "Logon"
		}
	case 3005:
		switch {
		case has("grant", "assign", "add"):
			return 1, "Assign Privileges"
		case has("revoke", "remove", "unassign"):
			return 2, "Revoke Privileges"
		}
	case 6003:
		switch {
		case has("create", "insert", "add"):
			return 1, "Create"
		case has("delete", "remove", "erase"):
			return 4, "Delete"
		case has("update", "modify", "change", "edit", "set"):
			return 3, "Update"
		case has("read", "view", "get", "list", "search", "export", "download") || cat == trailv1.Category_CATEGORY_DATA_ACCESS:
			return 2, "Read"
		case cat == trailv1.Category_CATEGORY_DATA_MODIFICATION:
			return 3, "Update"
		}
	}
	return 99, "Other"
}

// statusOf is OCSF's status_id and status for an outcome.
func statusOf(o trailv1.Outcome) (int, string) {
	switch o {
	case trailv1.Outcome_OUTCOME_SUCCESS:
		return 1, "Success"
	case trailv1.Outcome_OUTCOME_FAILURE, trailv1.Outcome_OUTCOME_DENIED, trailv1.Outcome_OUTCOME_ERROR:
		return 2, "Failure"
	}
	return 0, "Unknown"
}

// severityOf: an access refused or failed is worth a look (Low), a
// security event more (Medium); everything else is informational.
func severityOf(cat trailv1.Category, o trailv1.Outcome) (int, string) {
	switch {
	case cat == trailv1.Category_CATEGORY_SECURITY:
		return 3, "Medium"
	case o == trailv1.Outcome_OUTCOME_DENIED || o == trailv1.Outcome_OUTCOME_FAILURE:
		return 2, "Low"
	}
	return 1, "Informational"
}

func shortName(s string) string {
	_, after, _ := strings.Cut(s, "_")
	return strings.ToLower(after)
}
