package server

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/trailaudit/trail/internal/enumname"
)

// How REST names things, on every route, the gateway's and those served by
// hand alike (the OpenAPI document, proto/trail/v1/openapi.yaml, says the
// same):
//
//   - A query parameter is a request field by its proto name (min_index),
//     or by its JSON name (minIndex), as grpc-gateway takes them; one that
//     names no field is refused, rather than ignored, so a misspelt
//     parameter is never silently without effect.
//   - An empty value is the same as leaving the parameter out.
//   - An enum value, in a query or a JSON body, is its full name
//     (CATEGORY_DATA_ACCESS), its short name (data_access) or its number
//     (package enumname). Output keeps the full names.

// queryParser is the gateway's query parameter parser (see above); the
// routes served by hand parse with it too, through parseQuery.
type queryParser struct{}

var setQueryParser sync.Once

// useQueryParser installs queryParser in grpc-gateway. The runtime keeps
// its parser in a package variable, so it is set once, not per server.
func useQueryParser() {
	setQueryParser.Do(func() { runtime.NewServeMux(runtime.SetQueryParameterParser(queryParser{})) })
}

// mapKeyRE is the map-entry syntax of a query key, field[key].
var mapKeyRE = regexp.MustCompile(`^(.*)\[(.*)\]$`)

func (queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	norm := make(url.Values, len(values))
	var unknown []string
	for key, vals := range values {
		fd := queryField(md, key)
		if fd == nil {
			unknown = append(unknown, key)
			continue
		}
		if !slices.ContainsFunc(vals, func(v string) bool { return v != "" }) {
			continue
		}
		if ed := queryEnum(fd, key); ed != nil {
			vals = slices.Clone(vals)
			for i, v := range vals {
				ev, err := enumname.Parse(ed, key, v)
				if err != nil {
					return err
				}
				vals[i] = string(ev.Name())
			}
		}
		norm[key] = vals
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("unknown query parameter %s: %s takes %s", quoteAll(unknown), md.Name(), fieldNames(md))
	}
	return (&runtime.DefaultQueryParser{}).Parse(msg, norm, filter)
}

// queryField is the field a query key names (a dotted path of proto or
// JSON names, optionally with a map key), or nil.
func queryField(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	if m := mapKeyRE.FindStringSubmatch(key); m != nil {
		key = m[1]
	}
	var fd protoreflect.FieldDescriptor
	for i, name := range strings.Split(key, ".") {
		if i > 0 {
			if fd.Message() == nil || fd.IsList() || fd.IsMap() {
				return nil
			}
			md = fd.Message()
		}
		if fd = md.Fields().ByName(protoreflect.Name(name)); fd == nil {
			if fd = md.Fields().ByJSONName(name); fd == nil {
				return nil
			}
		}
	}
	return fd
}

// queryEnum is the enum a query key sets values of, or nil.
func queryEnum(fd protoreflect.FieldDescriptor, key string) protoreflect.EnumDescriptor {
	if fd.IsMap() {
		if !mapKeyRE.MatchString(key) {
			return nil
		}
		return fd.MapValue().Enum()
	}
	return fd.Enum()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// fieldNames lists md's fields by proto name, for an error message.
func fieldNames(md protoreflect.MessageDescriptor) string {
	fields := md.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = string(fields.Get(i).Name())
	}
	return strings.Join(names, ", ")
}

// parseQuery sets msg's fields from r's query string as the gateway does;
// pathParams are the fields set from the path, which the query cannot
// change.
func parseQuery(msg proto.Message, r *http.Request, pathParams ...string) error {
	seqs := make([][]string, len(pathParams))
	for i, p := range pathParams {
		seqs[i] = strings.Split(p, ".")
	}
	if err := (queryParser{}).Parse(msg, r.URL.Query(), utilities.NewDoubleArray(seqs)); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}
