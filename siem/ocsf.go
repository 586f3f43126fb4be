package siem

import (
	"encoding/hex"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// ocsfVersion is the OCSF schema the records are shaped after.
const ocsfVersion = "1.3.0"

// The record is built from typed structs, not maps, so that its field
// order is fixed and a record is the same bytes every time it is made.
type ocsfEvent struct {
	ClassUID     int          `json:"class_uid"`
	ClassName    string       `json:"class_name"`
	CategoryUID  int          `json:"category_uid"`
	CategoryName string       `json:"category_name"`
	ActivityID   int          `json:"activity_id"`
	ActivityName string       `json:"activity_name"`
	TypeUID      int          `json:"type_uid"`
	TypeName     string       `json:"type_name"`
	Time         int64        `json:"time"`
	SeverityID   int          `json:"severity_id"`
	Severity     string       `json:"severity"`
	StatusID     int          `json:"status_id"`
	Status       string       `json:"status"`
	Message      string       `json:"message,omitempty"`
	Metadata     ocsfMetadata `json:"metadata"`
	Actor        ocsfActor    `json:"actor"`
	SrcEndpoint  *ocsfIP      `json:"src_endpoint,omitempty"`
	API          *ocsfAPI     `json:"api,omitempty"`
	Resources    []ocsfRes    `json:"resources,omitempty"`
	Unmapped     ocsfUnmapped `json:"unmapped"`
}

type ocsfMetadata struct {
	Version        string      `json:"version"`
	Product        ocsfProduct `json:"product"`
	UID            string      `json:"uid"`
	TenantUID      string      `json:"tenant_uid"`
	LoggedTime     int64       `json:"logged_time"`
	LogName        string      `json:"log_name"`
	Sequence       uint64      `json:"sequence"`
	EventCode      string      `json:"event_code,omitempty"`
	CorrelationUID string      `json:"correlation_uid,omitempty"`
}

type ocsfProduct struct {
	VendorName string `json:"vendor_name"`
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
}

type ocsfActor struct {
	User    ocsfUser     `json:"user"`
	Session *ocsfSession `json:"session,omitempty"`
	AppName string       `json:"app_name,omitempty"`
}

type ocsfUser struct {
	UID    string      `json:"uid,omitempty"`
	Name   string      `json:"name,omitempty"`
	Type   string      `json:"type,omitempty"`
	Groups []ocsfGroup `json:"groups,omitempty"`
}

type ocsfGroup struct {
	Name string `json:"name"`
}

type ocsfSession struct {
	UID string `json:"uid"`
}

type ocsfIP struct {
	IP string `json:"ip"`
}

type ocsfAPI struct {
	Operation string       `json:"operation"`
	Service   *ocsfService `json:"service,omitempty"`
}

type ocsfService struct {
	Name string `json:"name"`
}

type ocsfRes struct {
	Type string `json:"type,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// ocsfUnmapped holds what OCSF has no attribute for: the data subject, the
// personal data read and why, field-level changes, and where the entry
// sits in the tamper-evident log.
type ocsfUnmapped struct {
	Category   string            `json:"trail_category"`
	Outcome    string            `json:"trail_outcome"`
	SubjectID  string            `json:"subject_id,omitempty"`
	PIIFields  []string          `json:"pii_fields_accessed,omitempty"`
	Purpose    string            `json:"purpose_code,omitempty"`
	Changes    []ocsfChange      `json:"changes,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	UserAgent  string            `json:"user_agent,omitempty"`
	Entry      ocsfEntry         `json:"trail_entry"`
}

type ocsfChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

type ocsfEntry struct {
	Partition    string `json:"partition"`
	LeafIndex    uint64 `json:"leaf_index"`
	LeafHash     string `json:"leaf_hash,omitempty"`
	PrevLeafHash string `json:"prev_leaf_hash,omitempty"`
}

var categoryNames = map[int]string{3: "Identity & Access Management", 6: "Application Activity"}

func ocsfOf(se *trailv1.StoredEntry, p Product) ocsfEvent {
	en := se.GetEntry()
	ev := en.GetEvent()
	cl := classOf(ev.GetCategory())
	act, actName := activityOf(cl, ev.GetCategory(), ev.GetAction())
	st, stName := statusOf(ev.GetOutcome())
	sev, sevName := severityOf(ev.GetCategory(), ev.GetOutcome())
	logged := en.GetSequencerTime().AsTime().UnixMilli()
	occurred := logged
	if ev.GetOccurredAt() != nil {
		occurred = ev.GetOccurredAt().AsTime().UnixMilli()
	}
	out := ocsfEvent{
		ClassUID: cl.classUID, ClassName: cl.name, CategoryUID: cl.categoryUID, CategoryName: categoryNames[cl.categoryUID],
		ActivityID: act, ActivityName: actName, TypeUID: cl.classUID*100 + act, TypeName: cl.name + ": " + actName,
		Time: occurred, SeverityID: sev, Severity: sevName, StatusID: st, Status: stName,
		Message: ev.GetAction(),
		Metadata: ocsfMetadata{
			Version: ocsfVersion, Product: ocsfProduct{VendorName: p.Vendor, Name: p.Name, Version: p.Version},
			UID: ev.GetEventId(), TenantUID: ev.GetTenantId(), LoggedTime: logged,
			LogName: se.GetPartition(), Sequence: se.GetLeafIndex(), EventCode: ev.GetAction(), CorrelationUID: ev.GetTraceId(),
		},
		Actor: ocsfActor{User: ocsfUser{UID: ev.GetActor().GetId(), Name: ev.GetActor().GetDisplayName(), Type: ev.GetActor().GetType()}, AppName: ev.GetSourceService()},
		Unmapped: ocsfUnmapped{
			Category: shortName(ev.GetCategory().String()), Outcome: shortName(ev.GetOutcome().String()),
			SubjectID: ev.GetSubjectId(), PIIFields: ev.GetPiiFieldsAccessed(), Purpose: ev.GetPurposeCode(),
			Attributes: ev.GetAttributes(), UserAgent: ev.GetActor().GetUserAgent(),
			Entry: ocsfEntry{Partition: se.GetPartition(), LeafIndex: se.GetLeafIndex(), LeafHash: hex.EncodeToString(se.GetLeafHash())},
		},
	}
	for _, r := range ev.GetActor().GetRoles() {
		out.Actor.User.Groups = append(out.Actor.User.Groups, ocsfGroup{Name: r})
	}
	if s := ev.GetActor().GetSessionId(); s != "" {
		out.Actor.Session = &ocsfSession{UID: s}
	}
	if ip := ev.GetActor().GetIp(); ip != "" {
		out.SrcEndpoint = &ocsfIP{IP: ip}
	}
	if cl == classAPI {
		out.API = &ocsfAPI{Operation: ev.GetAction()}
		if s := ev.GetSourceService(); s != "" {
			out.API.Service = &ocsfService{Name: s}
		}
	}
	if t := ev.GetTarget(); t.GetType() != "" || t.GetId() != "" {
		out.Resources = []ocsfRes{{Type: t.GetType(), UID: t.GetId()}}
	}
	for _, c := range ev.GetChanges() {
		out.Unmapped.Changes = append(out.Unmapped.Changes, ocsfChange{Field: c.GetField(), Before: c.GetBefore(), After: c.GetAfter()})
	}
	if h := en.GetPrevLeafHash(); len(h) > 0 {
		out.Unmapped.Entry.PrevLeafHash = hex.EncodeToString(h)
	}
	return out
}
