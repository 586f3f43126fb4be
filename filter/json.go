package filter

import (
	"encoding/json"
	"fmt"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Categories is a set of categories. JSON spells them by their full enum
// names (CATEGORY_DATA_ACCESS), as the API's JSON does, and reads the
// short names (data_access) too.
type Categories []trailv1.Category

// MarshalJSON encodes the categories by name.
func (cs Categories) MarshalJSON() ([]byte, error) {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.String()
	}
	return json.Marshal(names)
}

// UnmarshalJSON decodes categories by full or short name.
func (cs *Categories) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	out := make(Categories, 0, len(names))
	for _, name := range names {
		c, err := ParseCategory(name)
		if err != nil {
			return fmt.Errorf("filter: categories: %w", err)
		}
		out = append(out, c)
	}
	*cs = out
	return nil
}
