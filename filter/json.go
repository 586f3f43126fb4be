package filter

import (
	"encoding/json"
	"fmt"
)

// jsonFilter is Filter as JSON spells it: categories by their full enum
// names (CATEGORY_DATA_ACCESS), as the API's JSON does.
type jsonFilter struct {
	plain
	Categories []string `json:"categories,omitempty"`
}

// plain is Filter without its methods, so encoding it does not recurse.
type plain Filter

// MarshalJSON encodes f with categories by name.
func (f Filter) MarshalJSON() ([]byte, error) {
	j := jsonFilter{plain: plain(f)}
	for _, c := range f.Categories {
		j.Categories = append(j.Categories, c.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes; a category may be given
// by its full or short name.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var j jsonFilter
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Filter(j.plain)
	f.Categories = nil
	for _, name := range j.Categories {
		c, err := ParseCategory(name)
		if err != nil {
			return fmt.Errorf("filter: categories: %w", err)
		}
		f.Categories = append(f.Categories, c)
	}
	return nil
}
