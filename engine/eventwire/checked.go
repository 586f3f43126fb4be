package eventwire

// Checked is an event ready to be proposed: its canonical encoding, which
// passed Validate, and what Scan read of it. The write path reads an event
// once, where it enters the server, and hands this on: replication needs
// the bytes, and the leader's inspector the fields.
type Checked struct {
	Bytes []byte
	Event Event
}

// Check canonicalizes and validates one encoded event.
func Check(b []byte) (Checked, error) {
	var c Checked
	canon, err := Canonicalize(b, &c.Event)
	if err != nil {
		return Checked{}, err
	}
	if err := Validate(&c.Event); err != nil {
		return Checked{}, err
	}
	c.Bytes = canon
	return c, nil
}
