package rooms

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckInValidate: the check-ins people write are taken (trimmed);
// anything else is refused with ErrBadCheckIn, naming the field and never
// echoing the value.
func TestCheckInValidate(t *testing.T) {
	for _, c := range []CheckIn{
		{Location: "NY", Private: true, Phone: "+1 (555) 014-7391"},
		{Location: " PR ", Phone: "787 555 0100"},
		{Location: "other", Other: "Toronto, Canada", Phone: "416.555.0100 ext 12"},
		{Location: "other", Other: "São Paulo", Phone: "+55 11 5555 0100"},
		{Location: "DC", Phone: "2025550100x3"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v, want taken", c, err)
		}
	}
	for _, c := range []CheckIn{
		{Location: "ny", Phone: "5550147391"},
		{Location: "New York", Phone: "5550147391"},
		{Location: "other", Phone: "5550147391"},
		{Location: "other", Other: strings.Repeat("é", MaxCheckInOther+1), Phone: "5550147391"},
		{Location: "other", Other: "a\nb", Phone: "5550147391"},
		{Location: "NY", Other: "Lisbon", Phone: "5550147391"},
		{Location: "NY", Phone: "555-0147"[:5]},
		{Location: "NY", Phone: "1234567890123456"},
		{Location: "NY", Phone: "555 0147 391 +1"},
		{Location: "NY", Phone: "555-014-7391 ext"},
		{Location: "NY", Phone: "555-014-7391 x1a"},
		{Location: "NY", Phone: "<script>5550147391"},
		{Location: "NY", Phone: strings.Repeat("5", MaxCheckInPhone+1)},
	} {
		err := c.Validate()
		if !errors.Is(err, ErrBadCheckIn) {
			t.Errorf("%+v: %v, want ErrBadCheckIn", c, err)
		}
		if err != nil && c.Other != "" && strings.Contains(err.Error(), c.Other) {
			t.Errorf("the refusal echoes the value: %v", err)
		}
	}
}
