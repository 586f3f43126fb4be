package compliance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailaudit/trail/engine"
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// Bounds of a retention policy, in days: 2 to 10 years.
const (
	MinRetentionDays = 730
	MaxRetentionDays = 3653
)

// Default retention per category (docs/architecture.md "Event model").
const (
	retention2y  = 730
	retention7y  = 2557
	retention10y = 3653
)

var defaultRetention = map[trailv1.Category]uint32{
	trailv1.Category_CATEGORY_AUTHENTICATION:    retention2y,
	trailv1.Category_CATEGORY_AUTHORIZATION:     retention7y,
	trailv1.Category_CATEGORY_DATA_ACCESS:       retention7y,
	trailv1.Category_CATEGORY_DATA_MODIFICATION: retention7y,
	trailv1.Category_CATEGORY_WORKFLOW:          retention7y,
	trailv1.Category_CATEGORY_SYSTEM:            retention7y,
	trailv1.Category_CATEGORY_FINANCIAL:         retention10y,
	trailv1.Category_CATEGORY_COMPLIANCE:        retention10y,
	trailv1.Category_CATEGORY_SECURITY:          retention10y,
}

// ErrBadPolicy is wrapped by every invalid retention policy.
var ErrBadPolicy = errors.New("invalid retention policy")

// Categories lists every category a policy can be set for, in enum order.
func Categories() []trailv1.Category {
	out := make([]trailv1.Category, 0, len(defaultRetention))
	for c := trailv1.Category(1); ; c++ {
		if _, ok := trailv1.Category_name[int32(c)]; !ok {
			return out
		}
		out = append(out, c)
	}
}

// DefaultRetentionDays is the retention of c when no policy is set.
func DefaultRetentionDays(c trailv1.Category) (uint32, error) {
	d, ok := defaultRetention[c]
	if !ok {
		return 0, fmt.Errorf("%w: unknown category %d", ErrBadPolicy, c)
	}
	return d, nil
}

// CategoryName is the short form of c used in keys of attributes and in
// CLI output: "data_access".
func CategoryName(c trailv1.Category) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "CATEGORY_"))
}

// ParseCategory accepts "data_access", "DATA_ACCESS", "CATEGORY_DATA_ACCESS"
// or the enum number.
func ParseCategory(s string) (trailv1.Category, error) {
	if n, err := strconv.Atoi(s); err == nil {
		c := trailv1.Category(n)
		if _, ok := defaultRetention[c]; ok {
			return c, nil
		}
		return 0, fmt.Errorf("%w: unknown category %q", ErrBadPolicy, s)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "CATEGORY_") {
		name = "CATEGORY_" + name
	}
	c := trailv1.Category(trailv1.Category_value[name])
	if _, ok := defaultRetention[c]; !ok {
		return 0, fmt.Errorf("%w: unknown category %q", ErrBadPolicy, s)
	}
	return c, nil
}

// policyKey is the setting of one policy: "retention/<tenant>/<category
// number>". Tenant ids contain no '/'.
func policyKey(tenant string, c trailv1.Category) string {
	return "retention/" + tenant + "/" + strconv.Itoa(int(c))
}

// CheckPolicy validates a policy to set.
func CheckPolicy(tenant string, c trailv1.Category, days uint32) error {
	if err := engine.ValidateTenantID(tenant); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if _, err := DefaultRetentionDays(c); err != nil {
		return err
	}
	if days < MinRetentionDays || days > MaxRetentionDays {
		return fmt.Errorf("%w: retention_days %d outside %d..%d", ErrBadPolicy, days, MinRetentionDays, MaxRetentionDays)
	}
	return nil
}

// SetPolicyOps returns the setting operations that store a policy. The
// value is the decimal number of days: one encoding, so every node stores
// the same bytes.
func SetPolicyOps(tenant string, c trailv1.Category, days uint32) ([]engine.SettingOp, error) {
	if err := CheckPolicy(tenant, c, days); err != nil {
		return nil, err
	}
	v := []byte(strconv.FormatUint(uint64(days), 10))
	return []engine.SettingOp{{Key: policyKey(tenant, c), Value: v}}, nil
}

// ResetPolicyOps returns the setting operations that restore the default.
func ResetPolicyOps(tenant string, c trailv1.Category) ([]engine.SettingOp, error) {
	if err := engine.ValidateTenantID(tenant); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if _, err := DefaultRetentionDays(c); err != nil {
		return nil, err
	}
	return []engine.SettingOp{{Key: policyKey(tenant, c), Delete: true}}, nil
}

// Policy returns the effective policy of tenant for c.
func Policy(e *engine.Engine, tenant string, c trailv1.Category) (*trailv1.RetentionPolicy, error) {
	def, err := DefaultRetentionDays(c)
	if err != nil {
		return nil, err
	}
	out := &trailv1.RetentionPolicy{TenantId: tenant, Category: c, RetentionDays: def, IsDefault: true}
	b, err := e.Setting(policyKey(tenant, c))
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("compliance: retention policy: %w", err)
	}
	days, err := parseDays(b)
	if err != nil {
		return nil, fmt.Errorf("compliance: retention policy %s/%s: %w", tenant, CategoryName(c), err)
	}
	out.RetentionDays, out.IsDefault = days, false
	return out, nil
}

func parseDays(b []byte) (uint32, error) {
	d, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil || d < MinRetentionDays || d > MaxRetentionDays {
		return 0, fmt.Errorf("stored value %q: %w", b, engine.ErrCorrupt)
	}
	return uint32(d), nil
}

// Policies returns the effective policy of every category of tenant, in
// category order.
func Policies(ctx context.Context, e *engine.Engine, tenant string) ([]*trailv1.RetentionPolicy, error) {
	if err := engine.ValidateTenantID(tenant); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	var out []*trailv1.RetentionPolicy
	for _, c := range Categories() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := Policy(e, tenant, c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// retentionPeriod is the age at which an entry under p expires: whole
// days of 24 hours after its sequencer time.
func retentionPeriod(p *trailv1.RetentionPolicy) time.Duration {
	return time.Duration(p.GetRetentionDays()) * 24 * time.Hour
}
