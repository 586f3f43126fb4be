package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fileValue is one setting read from the configuration file.
type fileValue struct {
	key  string
	text string
	line int
}

// readConfigFile reads a YAML configuration file strictly: unknown keys,
// duplicate keys, a section where a value belongs (or the reverse), and
// anything but one mapping at the top are errors that name the line. Scalars
// are taken as text and parsed by the setting itself, exactly as a flag or
// environment variable would be.
func readConfigFile(path string, all []setting) ([]fileValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil // an empty file configures nothing
	} else if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: want one YAML document", path)
	}
	r := &fileReader{path: path, all: all, seen: make(map[string]int)}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, r.errorf(root, "the top level must be a mapping of settings")
	}
	if err := r.mapping(root, ""); err != nil {
		return nil, err
	}
	return r.out, nil
}

type fileReader struct {
	path string
	all  []setting
	seen map[string]int // key -> line, to refuse duplicates
	out  []fileValue
}

func (r *fileReader) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("config file %s:%d: %s", r.path, n.Line, fmt.Sprintf(format, args...))
}

func (r *fileReader) mapping(m *yaml.Node, prefix string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolveAlias(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return r.errorf(k, "keys must be plain names")
		}
		key := prefix + k.Value
		if line, dup := r.seen[key]; dup {
			return r.errorf(k, "%s is already set on line %d", key, line)
		}
		r.seen[key] = k.Line
		if err := r.entry(k, v, key); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileReader) entry(k, v *yaml.Node, key string) error {
	s, isSetting := lookupSetting(r.all, key)
	switch {
	case isSetting:
		return r.leaf(s, v)
	case isSection(r.all, key):
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return nil // an empty section
		}
		if v.Kind != yaml.MappingNode {
			return r.errorf(v, "%s is a section: want a mapping of its settings", key)
		}
		return r.mapping(v, key+".")
	default:
		return r.errorf(k, "unknown setting %s", key)
	}
}

func (r *fileReader) leaf(s setting, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return nil // "key:" with no value leaves the default
		}
		r.out = append(r.out, fileValue{key: s.key, text: v.Value, line: v.Line})
		return nil
	case yaml.SequenceNode:
		if _, ok := s.field(new(Config)).(listValue); !ok {
			return r.errorf(v, "%s takes one value, not a list", s.key)
		}
		items := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode || strings.Contains(item.Value, ",") {
				return r.errorf(item, "%s: each item must be a single value", s.key)
			}
			items = append(items, item.Value)
		}
		r.out = append(r.out, fileValue{key: s.key, text: strings.Join(items, ","), line: v.Line})
		return nil
	default:
		return r.errorf(v, "%s takes a value, not a section", s.key)
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
