// Package enumname lets people spell enum values the short way. An enum
// whose values share a prefix (CATEGORY_DATA_ACCESS, CATEGORY_SECURITY)
// takes, wherever a person types a value, the rest of the name in lower
// case ("data_access") as well as the full name and the number. protojson
// and the gateway's query parser take only the full name and the number.
//
// Everything is derived from the enum descriptors, so a new enum or value
// needs no list kept in step. Output is never affected: what Trail writes
// carries full names.
package enumname

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// names is what one enum accepts: upper-cased full and short names, each
// to its value.
type names struct {
	prefix string
	value  map[string]protoreflect.EnumNumber
	short  []string // the short names of the non-zero values, in order
}

var cache sync.Map // protoreflect.FullName -> *names

func namesOf(ed protoreflect.EnumDescriptor) *names {
	if n, ok := cache.Load(ed.FullName()); ok {
		return n.(*names)
	}
	vals := ed.Values()
	n := &names{prefix: Prefix(ed), value: make(map[string]protoreflect.EnumNumber, 2*vals.Len())}
	for i := range vals.Len() {
		v := vals.Get(i)
		n.value[strings.ToUpper(string(v.Name()))] = v.Number()
	}
	if n.prefix != "" {
		for i := range vals.Len() {
			v := vals.Get(i)
			short := strings.TrimPrefix(string(v.Name()), n.prefix)
			if _, taken := n.value[short]; !taken {
				n.value[short] = v.Number()
			}
			if v.Number() != 0 {
				n.short = append(n.short, strings.ToLower(short))
			}
		}
	}
	cache.Store(ed.FullName(), n)
	return n
}

// Prefix is the prefix every value name of ed starts with, up to and
// including its last '_' ("CATEGORY_"), or "" when the values share none
// (or ed has a single value).
func Prefix(ed protoreflect.EnumDescriptor) string {
	vals := ed.Values()
	if vals.Len() < 2 {
		return ""
	}
	p := string(vals.Get(0).Name())
	for i := 1; i < vals.Len(); i++ {
		name := string(vals.Get(i).Name())
		k := 0
		for k < len(p) && k < len(name) && p[k] == name[k] {
			k++
		}
		p = p[:k]
	}
	return p[:strings.LastIndexByte(p, '_')+1]
}

// Short is v's short name: lower case, without its enum's prefix
// ("data_access"); the full name when the enum has no prefix.
func Short(v protoreflect.EnumValueDescriptor) string {
	p := Prefix(v.Parent().(protoreflect.EnumDescriptor))
	if p == "" {
		return string(v.Name())
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), p))
}

// Lookup finds the value of ed that s names: its full name
// ("CATEGORY_DATA_ACCESS"), its short name ("data_access"), either in any
// case, or its number ("3").
func Lookup(ed protoreflect.EnumDescriptor, s string) (protoreflect.EnumValueDescriptor, bool) {
	vals := ed.Values()
	if v := vals.ByName(protoreflect.Name(s)); v != nil {
		return v, true
	}
	if n, ok := namesOf(ed).value[strings.ToUpper(s)]; ok {
		return vals.ByNumber(n), true
	}
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		if v := vals.ByNumber(protoreflect.EnumNumber(n)); v != nil {
			return v, true
		}
	}
	return nil, false
}

// Parse is Lookup with an error for a name ed lacks that tells what it
// takes. field names what was being set.
func Parse(ed protoreflect.EnumDescriptor, field, s string) (protoreflect.EnumValueDescriptor, error) {
	if v, ok := Lookup(ed, s); ok {
		return v, nil
	}
	return nil, Error(ed, field, s)
}

// Error is the error for s, not a name of ed, given for field.
func Error(ed protoreflect.EnumDescriptor, field, s string) error {
	n := namesOf(ed)
	if len(n.short) == 0 {
		return fmt.Errorf("%s: %q is not a %s", field, s, ed.Name())
	}
	example := n.prefix + strings.ToUpper(n.short[0])
	return fmt.Errorf("%s: %q is not a %s: want one of %s (or the full name, as %s)",
		field, s, ed.Name(), strings.Join(n.short, ", "), example)
}

// Unmarshal is opts.Unmarshal(b, m) that also takes short enum names. The
// JSON is rewritten only when protojson refuses it as it is, so a body
// spelt with full names costs nothing more. A name no enum value has is
// reported by Error, naming the field.
func Unmarshal(opts protojson.UnmarshalOptions, b []byte, m proto.Message) error {
	err := opts.Unmarshal(b, m)
	if err == nil {
		return nil
	}
	fixed, changed, ferr := Rewrite(b, m.ProtoReflect().Descriptor())
	if ferr != nil {
		return ferr
	}
	if !changed {
		return err
	}
	return opts.Unmarshal(fixed, m)
}

// Rewrite returns the JSON of a message of type md with every enum value
// given as a short name (or a name in another case, or a number in a
// string) replaced by its full name, and whether anything was replaced.
// JSON that is not what protojson takes is left for protojson to refuse;
// Rewrite fails only on a string that names no value of its enum.
func Rewrite(b []byte, md protoreflect.MessageDescriptor) ([]byte, bool, error) {
	return rewriteMessage(b, md, "")
}

func rewriteMessage(b []byte, md protoreflect.MessageDescriptor, path string) ([]byte, bool, error) {
	if md.FullName().Parent() == "google.protobuf" {
		return b, false, nil // well-known types have JSON forms of their own
	}
	fields := md.Fields()
	return rewriteObject(b, func(val []byte, key string) ([]byte, bool, error) {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return val, false, nil // an unknown field is protojson's to refuse
		}
		return rewriteField(val, fd, join(path, string(fd.Name())))
	})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// rewriteField rewrites the value of field fd; path names it in errors.
func rewriteField(b []byte, fd protoreflect.FieldDescriptor, path string) ([]byte, bool, error) {
	switch {
	case fd.IsMap():
		vd := fd.MapValue()
		if vd.Enum() == nil && vd.Message() == nil {
			return b, false, nil
		}
		return rewriteObject(b, func(v []byte, key string) ([]byte, bool, error) {
			return rewriteSingular(v, vd, path+"["+key+"]")
		})
	case fd.IsList():
		if fd.Enum() == nil && fd.Message() == nil {
			return b, false, nil
		}
		var items []json.RawMessage
		if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '[' || json.Unmarshal(b, &items) != nil {
			return b, false, nil
		}
		changed := false
		for i, it := range items {
			nv, c, err := rewriteSingular(it, fd, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, false, err
			}
			items[i], changed = nv, changed || c
		}
		if !changed {
			return b, false, nil
		}
		out, err := json.Marshal(items)
		return out, err == nil, err
	}
	return rewriteSingular(b, fd, path)
}

// rewriteObject rewrites each value of a JSON object with f, keeping the
// keys (and any repeated key, for protojson to refuse).
func rewriteObject(b []byte, f func(v []byte, key string) ([]byte, bool, error)) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return b, false, nil
	}
	var out bytes.Buffer
	out.WriteByte('{')
	changed := false
	for i := 0; dec.More(); i++ {
		t, err := dec.Token()
		if err != nil {
			return b, false, nil
		}
		key, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return b, false, nil
		}
		nv, c, err := f(val, key)
		if err != nil {
			return nil, false, err
		}
		changed = changed || c
		if i > 0 {
			out.WriteByte(',')
		}
		kb, _ := json.Marshal(key)
		out.Write(kb)
		out.WriteByte(':')
		out.Write(nv)
	}
	if !changed {
		return b, false, nil
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return b, false, nil
	}
	out.WriteByte('}')
	out.Write(b[dec.InputOffset():]) // what follows is protojson's to refuse
	return out.Bytes(), true, nil
}

// rewriteSingular rewrites one enum or message value of field fd.
func rewriteSingular(b []byte, fd protoreflect.FieldDescriptor, path string) ([]byte, bool, error) {
	if md := fd.Message(); md != nil {
		return rewriteMessage(b, md, path)
	}
	ed := fd.Enum()
	if ed == nil || ed.FullName() == "google.protobuf.NullValue" {
		return b, false, nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return b, false, nil // a number or null: protojson's to judge
	}
	if ed.Values().ByName(protoreflect.Name(s)) != nil {
		return b, false, nil
	}
	v, err := Parse(ed, path, s)
	if err != nil {
		return nil, false, err
	}
	out, _ := json.Marshal(string(v.Name()))
	return out, true, nil
}
