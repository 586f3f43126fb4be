package siem

import (
	"encoding/hex"
	"strconv"
	"strings"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// cefOf renders an entry as one CEF line:
//
//	CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension
//
// with ArcSight's standard extension keys where one fits, and the
// custom-string slots (csN with its csNLabel) for the rest.
func cefOf(se *trailv1.StoredEntry, p Product) string {
	en := se.GetEntry()
	ev := en.GetEvent()
	cat := shortName(ev.GetCategory().String())
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, h := range []string{p.Vendor, p.Name, p.Version, cat + ":" + ev.GetAction(), ev.GetAction()} {
		b.WriteString(cefHeader(h))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(cefSeverity(ev.GetCategory(), ev.GetOutcome())))
	b.WriteByte('|')

	ext := cefExt{b: &b}
	ext.add("rt", strconv.FormatInt(en.GetSequencerTime().AsTime().UnixMilli(), 10))
	if ev.GetOccurredAt() != nil {
		ext.add("start", strconv.FormatInt(ev.GetOccurredAt().AsTime().UnixMilli(), 10))
	}
	ext.add("externalId", ev.GetEventId())
	ext.add("cat", cat)
	ext.add("act", ev.GetAction())
	ext.add("outcome", shortName(ev.GetOutcome().String()))
	ext.add("suser", ev.GetActor().GetId())
	ext.add("suid", ev.GetActor().GetDisplayName())
	ext.add("spriv", strings.Join(ev.GetActor().GetRoles(), ","))
	ext.add("src", ev.GetActor().GetIp())
	ext.add("requestClientApplication", ev.GetActor().GetUserAgent())
	ext.add("duser", ev.GetSubjectId())
	ext.add("deviceProcessName", ev.GetSourceService())
	if t := ev.GetTarget(); t.GetType() != "" || t.GetId() != "" {
		// CEF has no key for the entity acted on: a flex string holds it.
		ext.add("flexString1", t.GetType()+"/"+t.GetId())
		ext.add("flexString1Label", "target")
	}
	ext.custom(1, "tenant", ev.GetTenantId())
	ext.custom(2, "partition", se.GetPartition())
	ext.add("cn1", strconv.FormatUint(se.GetLeafIndex(), 10))
	ext.add("cn1Label", "leafIndex")
	ext.custom(3, "purpose", ev.GetPurposeCode())
	ext.custom(4, "piiFields", strings.Join(ev.GetPiiFieldsAccessed(), ","))
	ext.custom(5, "traceId", ev.GetTraceId())
	ext.custom(6, "prevLeafHash", hex.EncodeToString(en.GetPrevLeafHash()))
	if h := se.GetLeafHash(); len(h) > 0 {
		ext.add("flexString2", hex.EncodeToString(h))
		ext.add("flexString2Label", "leafHash")
	}
	return b.String()
}

// cefSeverity maps to CEF's 0-10 scale: 3 informational, 5 a refused or
// failed action, 7 a security event.
func cefSeverity(cat trailv1.Category, o trailv1.Outcome) int {
	switch sev, _ := severityOf(cat, o); sev {
	case 3:
		return 7
	case 2:
		return 5
	}
	return 3
}

// cefHeader escapes a header field: a pipe or backslash is escaped, and a
// line break, which would end the record, becomes a space.
func cefHeader(s string) string {
	if !strings.ContainsAny(s, `|\`+"\r\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r\n", " ", "\n", " ", "\r", " ")
	return r.Replace(s)
}

// cefValue escapes an extension value: backslash and equals sign are
// escaped, line breaks written as \n and \r.
func cefValue(s string) string {
	if !strings.ContainsAny(s, `=\`+"\r\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\n", `\n`, "\r", `\r`)
	return r.Replace(s)
}

// cefExt writes key=value pairs separated by spaces, leaving out empty
// values.
type cefExt struct {
	b     *strings.Builder
	wrote bool
}

func (e *cefExt) add(key, value string) {
	if value == "" {
		return
	}
	if e.wrote {
		e.b.WriteByte(' ')
	}
	e.b.WriteString(key)
	e.b.WriteByte('=')
	e.b.WriteString(cefValue(value))
	e.wrote = true
}

func (e *cefExt) custom(n int, label, value string) {
	if value == "" {
		return
	}
	k := "cs" + strconv.Itoa(n)
	e.add(k, value)
	e.add(k+"Label", label)
}
