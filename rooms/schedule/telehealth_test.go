package schedule

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestTelehealthConfig: the example program asks for check-in and consent;
// a consent without a usable version or text is refused.
func TestTelehealthConfig(t *testing.T) {
	f, err := LoadYAML(bytes.NewReader(Example))
	if err != nil {
		t.Fatal(err)
	}
	th := f.Program.Telehealth
	if !th.CheckIn || th.Consent == nil || th.Consent.Version != "2026-01" || !strings.Contains(th.Consent.Text, "Telehealth consent") {
		t.Fatalf("the example's telehealth: %+v", th)
	}
	for _, c := range []Consent{
		{Version: "", Text: "text"},
		{Version: "v 1", Text: "text"},
		{Version: strings.Repeat("v", 33), Text: "text"},
		{Version: "v1", Text: "  \n "},
		{Version: "v1", Text: strings.Repeat("x", MaxConsentText+1)},
		{Version: "v1", Text: "\xff\xfe"},
	} {
		p := f.Program
		p.Telehealth.Consent = &c
		if err := p.Validate(nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "telehealth consent") {
			t.Errorf("consent %.40q/%.20q: %v, want refused", c.Version, c.Text, err)
		}
	}
}
