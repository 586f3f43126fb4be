package main

import (
	"flag"
	"strings"

	"github.com/trailaudit/trail/filter"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// filterFlags are the selection flags search and export share: each may
// be repeated, and the values of one flag are alternatives (--category
// data_access --category authentication selects either), as the API's
// Filter has it.
type filterFlags struct {
	actors, subjects, actions, purposes, piiFields stringsFlag
	categories, targets                            stringsFlag
	targetType, targetID                           string
	from, to                                       string
}

// stringsFlag collects a repeated flag's values.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func (f *filterFlags) register(fs *flag.FlagSet, verb string) {
	fs.Var(&f.actors, "actor", verb+" of this actor id (repeat for any of several)")
	fs.Var(&f.subjects, "subject", verb+" about this data subject (repeatable; a report on people's data: needs the privacy_officer role)")
	fs.Var(&f.targets, "target", verb+" on this target, `TYPE/ID` (repeatable)")
	fs.StringVar(&f.targetType, "target-type", "", "with --target-id: one target, as --target TYPE/ID")
	fs.StringVar(&f.targetID, "target-id", "", "with --target-type: one target, as --target TYPE/ID")
	fs.Var(&f.categories, "category", verb+" of this category (authentication, data_access, ...; repeatable or comma-separated)")
	fs.Var(&f.actions, "action", verb+" of this action, e.g. user.login (repeatable)")
	fs.Var(&f.purposes, "purpose", verb+" with this purpose code (repeatable)")
	fs.Var(&f.piiFields, "pii-field", verb+" that accessed this PII field (repeatable; needs the privacy_officer role)")
	fs.StringVar(&f.from, "from", "", verb+" sequenced at or after `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&f.to, "to", "", verb+" sequenced before `TIME` (RFC 3339 or YYYY-MM-DD)")
}

// filter returns the selection the flags describe, checked as the server
// will check it, so a mistake is a usage error before any call.
func (f *filterFlags) filter() (*trailv1.Filter, error) {
	p := &trailv1.Filter{
		ActorIds: f.actors, SubjectIds: f.subjects, Actions: f.actions,
		PurposeCodes: f.purposes, PiiFields: f.piiFields,
	}
	for _, list := range f.categories {
		for _, name := range strings.Split(list, ",") {
			c, err := parseCategory(strings.TrimSpace(name))
			if err != nil {
				return nil, usageErrorf("--category: %v", err)
			}
			p.Categories = append(p.Categories, c)
		}
	}
	for _, t := range f.targets {
		typ, id, ok := strings.Cut(t, "/")
		if !ok || typ == "" || id == "" {
			return nil, usageErrorf("--target %q: want TYPE/ID", t)
		}
		p.Targets = append(p.Targets, &trailv1.Target{Type: typ, Id: id})
	}
	if f.targetType != "" || f.targetID != "" {
		if f.targetType == "" || f.targetID == "" {
			return nil, usageErrorf("--target-type and --target-id go together")
		}
		p.Targets = append(p.Targets, &trailv1.Target{Type: f.targetType, Id: f.targetID})
	}
	var err error
	if p.From, err = optionalTime(f.from); err != nil {
		return nil, usageErrorf("--from: %v", err)
	}
	if p.To, err = optionalTime(f.to); err != nil {
		return nil, usageErrorf("--to: %v", err)
	}
	if _, err := filter.FromProto(p); err != nil {
		return nil, usageErrorf("%v", err)
	}
	return p, nil
}
