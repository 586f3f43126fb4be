package engine

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Month is a UTC calendar month, the time unit of partitioning.
type Month struct {
	Year  int
	Month time.Month
}

// MonthOf returns the UTC month containing t.
func MonthOf(t time.Time) Month {
	u := t.UTC()
	return Month{Year: u.Year(), Month: u.Month()}
}

// ParseMonth parses "YYYY-MM".
func ParseMonth(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' {
		return Month{}, fmt.Errorf("engine: partition %q: want YYYY-MM", s)
	}
	y, err1 := strconv.Atoi(s[:4])
	m, err2 := strconv.Atoi(s[5:])
	if err1 != nil || err2 != nil || y < 1970 || m < 1 || m > 12 {
		return Month{}, fmt.Errorf("engine: partition %q: want YYYY-MM", s)
	}
	return Month{Year: y, Month: time.Month(m)}, nil
}

func (m Month) String() string {
	if m.Year < 0 || m.Year > 9999 {
		return fmt.Sprintf("%04d-%02d", m.Year, int(m.Month))
	}
	return string(m.AppendText(make([]byte, 0, 7)))
}

// Start is the first instant of the month.
func (m Month) Start() time.Time { return time.Date(m.Year, m.Month, 1, 0, 0, 0, 0, time.UTC) }

// Next is the following month.
func (m Month) Next() Month { return MonthOf(m.Start().AddDate(0, 1, 0)) }

// Before reports whether m is earlier than o.
func (m Month) Before(o Month) bool {
	return m.Year < o.Year || (m.Year == o.Year && m.Month < o.Month)
}

func (m Month) appendKey(b []byte) []byte {
	return append(b, byte(m.Year>>8), byte(m.Year), byte(m.Month))
}

func decodeMonthKey(b []byte) (Month, error) {
	if len(b) < 3 {
		return Month{}, errors.New("short month key")
	}
	m := Month{Year: int(b[0])<<8 | int(b[1]), Month: time.Month(b[2])}
	if m.Month < 1 || m.Month > 12 {
		return Month{}, fmt.Errorf("bad month %d", b[2])
	}
	return m, nil
}

// Partition names one tenant's monthly log.
type Partition struct {
	Tenant string
	Month  Month
}

func (p Partition) String() string { return p.Tenant + "/" + p.Month.String() }

// Origin is the checkpoint origin of p under logName: "<log>/<tenant>/<YYYY-MM>".
func (p Partition) Origin(logName string) string { return logName + "/" + p.String() }

func compareMonths(a, b Month) int {
	switch {
	case a.Before(b):
		return -1
	case b.Before(a):
		return 1
	}
	return 0
}

// AppendText appends "YYYY-MM" for years 0..9999: String without fmt, for
// paths that format a month per event.
func (m Month) AppendText(b []byte) []byte {
	y, mo := m.Year, int(m.Month)
	return append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10))
}
