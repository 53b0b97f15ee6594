package attendance

import (
	"fmt"
	"sort"
	"time"
)

// Billing is a program's billing settings: the service codes, the place
// of service and the modifiers its billing export writes. Zero fields take
// DefaultBilling's.
type Billing struct {
	// PlaceOfService is the CMS place-of-service code of telehealth
	// sessions: "10" (in the client's home, the default) or "02" (other
	// than home). Places overrides it per client (sub).
	PlaceOfService string            `json:"place_of_service"`
	Places         map[string]string `json:"places,omitempty"`
	// DayCode is the per-diem code of a billable day (a day with at least
	// Rules.BillableDay of direct service): H0015 (default) or S9480.
	DayCode string `json:"day_code"`
	// GroupCode is the code of group psychotherapy sessions (90853).
	GroupCode string `json:"group_code"`
	// IndividualCodes are the individual psychotherapy codes by length:
	// the code of the longest Min the session's direct time reaches
	// (90832 from 16 min, 90834 from 38, 90837 from 53).
	IndividualCodes []LengthCode `json:"individual_codes"`
	// FamilyCode is family psychotherapy with the client present (90847),
	// FamilyWithoutClientCode without them (90846).
	FamilyCode              string `json:"family_code"`
	FamilyWithoutClientCode string `json:"family_without_client_code"`
	// VideoModifier marks a day served by video (95); AudioModifier one
	// served by audio only (93; some payers want FQ).
	VideoModifier string `json:"video_modifier"`
	AudioModifier string `json:"audio_modifier"`
}

// LengthCode is a service code for sessions of at least Min.
type LengthCode struct {
	Min  time.Duration `json:"min"`
	Code string        `json:"code"`
}

// DefaultBilling returns the codes of a US intensive outpatient program
// billed per diem with H0015.
func DefaultBilling() Billing {
	return Billing{
		PlaceOfService: "10",
		DayCode:        "H0015",
		GroupCode:      "90853",
		IndividualCodes: []LengthCode{
			{Min: 16 * time.Minute, Code: "90832"},
			{Min: 38 * time.Minute, Code: "90834"},
			{Min: 53 * time.Minute, Code: "90837"},
		},
		FamilyCode:              "90847",
		FamilyWithoutClientCode: "90846",
		VideoModifier:           "95",
		AudioModifier:           "93",
	}
}

// WithDefaults fills the zero fields of b from DefaultBilling.
func (b Billing) WithDefaults() Billing {
	d := DefaultBilling()
	fill := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	fill(&b.PlaceOfService, d.PlaceOfService)
	fill(&b.DayCode, d.DayCode)
	fill(&b.GroupCode, d.GroupCode)
	fill(&b.FamilyCode, d.FamilyCode)
	fill(&b.FamilyWithoutClientCode, d.FamilyWithoutClientCode)
	fill(&b.VideoModifier, d.VideoModifier)
	fill(&b.AudioModifier, d.AudioModifier)
	if len(b.IndividualCodes) == 0 {
		b.IndividualCodes = d.IndividualCodes
	}
	b.IndividualCodes = append([]LengthCode(nil), b.IndividualCodes...)
	sort.Slice(b.IndividualCodes, func(i, j int) bool { return b.IndividualCodes[i].Min < b.IndividualCodes[j].Min })
	return b
}

// Places of service the export accepts.
var placesOfService = map[string]bool{"02": true, "10": true}

// Check refuses settings a claim could not carry: a place of service other
// than 02 or 10, a code or modifier that is not 2 to 5 letters and digits.
func (b Billing) Check() error {
	code := func(what, v string, min int) error {
		if v == "" {
			return nil
		}
		ok := len(v) >= min && len(v) <= 5
		for _, r := range v {
			ok = ok && (r >= '0' && r <= '9' || r >= 'A' && r <= 'Z')
		}
		if !ok {
			return fmt.Errorf("%w: %s %q: want %d to 5 capital letters and digits", ErrPolicy, what, v, min)
		}
		return nil
	}
	if b.PlaceOfService != "" && !placesOfService[b.PlaceOfService] {
		return fmt.Errorf("%w: place of service %q: want 02 or 10", ErrPolicy, b.PlaceOfService)
	}
	for sub, p := range b.Places {
		if !placesOfService[p] {
			return fmt.Errorf("%w: place of service %q of %s: want 02 or 10", ErrPolicy, p, sub)
		}
	}
	for _, c := range []struct{ what, v string }{
		{"day_code", b.DayCode}, {"group_code", b.GroupCode}, {"family_code", b.FamilyCode},
		{"family_without_client_code", b.FamilyWithoutClientCode},
	} {
		if err := code(c.what, c.v, 5); err != nil {
			return err
		}
	}
	for _, c := range b.IndividualCodes {
		if err := code("individual code", c.Code, 5); err != nil {
			return err
		}
		if c.Min <= 0 || c.Min > 4*time.Hour {
			return fmt.Errorf("%w: individual code %s from %s: want a length up to 4h", ErrPolicy, c.Code, c.Min)
		}
	}
	if err := code("video_modifier", b.VideoModifier, 2); err != nil {
		return err
	}
	return code("audio_modifier", b.AudioModifier, 2)
}

// place returns a client's place of service.
func (b Billing) place(sub string) string {
	if p := b.Places[sub]; p != "" {
		return p
	}
	return b.PlaceOfService
}

// individualCode returns the code of an individual session with d of
// direct service, "" below the shortest.
func (b Billing) individualCode(d time.Duration) string {
	code := ""
	for _, c := range b.IndividualCodes {
		if d >= c.Min {
			code = c.Code
		}
	}
	return code
}
