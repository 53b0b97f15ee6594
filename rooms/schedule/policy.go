package schedule

import (
	"context"
	"errors"
	"fmt"

	"iop/rooms/attendance"
)

// AttendancePolicy is the program's attendance policy as its schedule file
// writes it (README, "Attendance"); zero fields take the defaults of
// attendance.DefaultPolicy.
type AttendancePolicy struct {
	// SessionShare is the share of a session's length a client must be
	// present in its window to have attended it (0.5).
	SessionShare float64 `json:"session_share,omitempty" yaml:"session_share,omitempty"`
	// LateMargin is how late a first arrival and how early a last
	// departure may be without a flag (10m).
	LateMargin Duration `json:"late_margin,omitzero" yaml:"late_margin,omitempty"`
	// DayMinimum is the attended time a day needs to count toward the
	// weekly target days (1h).
	DayMinimum Duration `json:"day_minimum,omitzero" yaml:"day_minimum,omitempty"`
}

// Policy returns p as attendance applies it.
func (p *AttendancePolicy) Policy() attendance.Policy {
	if p == nil {
		return attendance.Policy{}
	}
	return attendance.Policy{SessionShare: p.SessionShare, LateMargin: p.LateMargin.D(), DayMinimum: p.DayMinimum.D()}
}

// BillingCodes are the program's billing settings as its schedule file
// writes them; zero fields take attendance.DefaultBilling's. A client's
// own place of service is their enrollment's place_of_service.
type BillingCodes struct {
	PlaceOfService          string       `json:"place_of_service,omitempty" yaml:"place_of_service,omitempty"`
	DayCode                 string       `json:"day_code,omitempty" yaml:"day_code,omitempty"`
	GroupCode               string       `json:"group_code,omitempty" yaml:"group_code,omitempty"`
	IndividualCodes         []LengthCode `json:"individual_codes,omitempty" yaml:"individual_codes,omitempty"`
	FamilyCode              string       `json:"family_code,omitempty" yaml:"family_code,omitempty"`
	FamilyWithoutClientCode string       `json:"family_without_client_code,omitempty" yaml:"family_without_client_code,omitempty"`
	VideoModifier           string       `json:"video_modifier,omitempty" yaml:"video_modifier,omitempty"`
	AudioModifier           string       `json:"audio_modifier,omitempty" yaml:"audio_modifier,omitempty"`
}

// LengthCode is an individual session code for sessions of at least Min.
type LengthCode struct {
	Min  Duration `json:"min" yaml:"min"`
	Code string   `json:"code" yaml:"code"`
}

// Billing returns b as attendance applies it.
func (b *BillingCodes) Billing() attendance.Billing {
	if b == nil {
		return attendance.Billing{}
	}
	out := attendance.Billing{
		PlaceOfService: b.PlaceOfService, DayCode: b.DayCode, GroupCode: b.GroupCode,
		FamilyCode: b.FamilyCode, FamilyWithoutClientCode: b.FamilyWithoutClientCode,
		VideoModifier: b.VideoModifier, AudioModifier: b.AudioModifier,
	}
	for _, c := range b.IndividualCodes {
		out.IndividualCodes = append(out.IndividualCodes, attendance.LengthCode{Min: c.Min.D(), Code: c.Code})
	}
	return out
}

var _ attendance.ProgramConfig = Attendance{}

// Policy implements attendance.ProgramConfig: the program's attendance
// policy (the defaults for a program without a schedule).
func (a Attendance) Policy(ctx context.Context, program string) (attendance.Policy, error) {
	p, err := a.s.Program(ctx, program)
	if errors.Is(err, ErrNotFound) {
		return attendance.Policy{}, nil
	}
	if err != nil {
		return attendance.Policy{}, err
	}
	return p.Attendance.Policy(), nil
}

// Billing implements attendance.ProgramConfig: the program's codes, with
// each enrolled client's own place of service.
func (a Attendance) Billing(ctx context.Context, program string) (attendance.Billing, error) {
	p, err := a.s.Program(ctx, program)
	if errors.Is(err, ErrNotFound) {
		return attendance.Billing{}, nil
	}
	if err != nil {
		return attendance.Billing{}, err
	}
	b := p.Billing.Billing()
	es, err := a.s.Enrollments(ctx, program)
	if err != nil {
		return attendance.Billing{}, err
	}
	for _, e := range es {
		if e.PlaceOfService != "" {
			if b.Places == nil {
				b.Places = map[string]string{}
			}
			b.Places[e.Sub] = e.PlaceOfService
		}
	}
	return b, nil
}

// Expects returns the occurrence whose room id is room when it is one of
// client sub's own sessions (an absence reason can be recorded for it);
// otherwise an error that wraps ErrNotFound.
func (st *Store) Expects(ctx context.Context, program, sub, room string) (Occurrence, error) {
	sch, err := st.LoadFor(ctx, program, sub)
	if err != nil {
		return Occurrence{}, err
	}
	o, err := sch.Find(room)
	if err != nil || !sch.attends(sub, &o) {
		return Occurrence{}, fmt.Errorf("%w: %s is not one of %s's sessions", ErrNotFound, room, sub)
	}
	return o, nil
}
