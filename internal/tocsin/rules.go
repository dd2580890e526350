package tocsin

import (
	"slices"
	"strings"
	"time"
)

// Limits on a filing.
const (
	MaxTitleChars    = 200
	MaxHeadlineChars = 140 // CAP recommends under 160
	MaxSegments      = 10  // a longer message is a leaflet, not an SMS
	// MaxContentChars is far beyond MaxSegments (10 segments are at most
	// 1530 GSM characters): it refuses an absurd body before measuring it.
	MaxContentChars = 2000
	MaxScopeRegions = 500
	MaxEventChars   = 100
	MaxReasonChars  = 2000
	MaxReportChars  = 20000
	// SendAtSlack tolerates clock skew between a department's system and
	// ours when an emergency asks to go out "now": an emergency's send
	// time may lie this far in the future, and no further (emergencies
	// are immediate; a later message is an ordinary filing).
	SendAtSlack = 5 * time.Minute
)

// Filing is what a department submits.
type Filing struct {
	Title     string     `json:"title"`
	Headline  string     `json:"headline,omitempty"`
	Content   string     `json:"content"`
	Scope     []string   `json:"scope"`
	SendAt    *time.Time `json:"send_at,omitempty"`
	SendUntil *time.Time `json:"send_until,omitempty"`
	Emergency *Emergency `json:"emergency,omitempty"`
	Exercise  bool       `json:"exercise,omitempty"`
	// SendAtFrom names where SendAt came from when it was not the JSON
	// send_at (a CAP alert's "sent", "effective" or "onset"), so that a
	// refusal names the field the sender wrote.
	SendAtFrom string `json:"-"`
}

func invalid(field, format string, args ...any) *Error {
	return Errorf(CodeValidation, format, args...).With("field", field)
}

// checkFiler enforces Article 17: only departments of provincial-level or
// higher people's governments file public-welfare broadcasts.
func checkFiler(a Actor) error {
	if a.Role != RoleDepartment {
		return Errorf(CodeForbidden, "only government departments file broadcasts")
	}
	if a.Level != LevelNational && a.Level != LevelProvincial {
		return Errorf(CodeForbidden,
			"only departments at provincial level or above may file public-welfare broadcasts (Article 17); %s is %s level",
			a.Org, a.Level)
	}
	return nil
}

// validateContent checks the fields that do not depend on time or place and
// normalises the filing in place.
func validateContent(f *Filing, regions Regions) error {
	var err error
	if f.Title, err = cleanText("title", f.Title, singleLine, MaxTitleChars); err != nil {
		return err
	}
	if Blank(f.Title) {
		return invalid("title", "title is required and may not be blank")
	}
	if f.Headline, err = cleanText("headline", f.Headline, singleLine, MaxHeadlineChars); err != nil {
		return err
	}
	f.Headline = strings.TrimSpace(f.Headline)
	// Content is bounded by MaxSegments; MaxContentChars only stops an
	// absurd body before it is measured.
	if f.Content, err = cleanText("content", f.Content, smsText, MaxContentChars); err != nil {
		return err
	}
	if Blank(f.Content) {
		return invalid("content", "content is required and may not be blank")
	}
	if sms := MeasureSMS(f.Content); sms.Segments > MaxSegments {
		return invalid("content", "content takes %d SMS segments (%s); at most %d are allowed",
			sms.Segments, sms.Encoding, MaxSegments).With("segments", sms.Segments)
	}
	if len(f.Scope) == 0 {
		return invalid("scope", "scope must name at least one region code")
	}
	if len(f.Scope) > MaxScopeRegions {
		return invalid("scope", "scope names more than %d regions", MaxScopeRegions)
	}
	scope := make([]string, 0, len(f.Scope))
	for _, code := range f.Scope {
		code = strings.TrimSpace(code)
		if err := regions.Validate(code); err != nil {
			return &Error{Code: CodeUnknownRegion, Message: err.Error(), Details: map[string]any{"field": "scope", "region": code}}
		}
		if !slices.Contains(scope, code) {
			scope = append(scope, code)
		}
	}
	f.Scope = scope
	if e := f.Emergency; e != nil {
		if !slices.Contains(EmergencyTypes, e.Type) {
			return invalid("emergency.type", "emergency type %q is not one of %s", e.Type, joinQuoted(EmergencyTypes))
		}
		if e.Event, err = cleanText("emergency.event", e.Event, singleLine, MaxEventChars); err != nil {
			return err
		}
		if Blank(e.Event) {
			return invalid("emergency.event", "emergency event is required (for example typhoon)")
		}
		if !slices.Contains(WarningLevels, e.Level) {
			return invalid("emergency.level", "warning level %q is not one of %s", e.Level, joinQuoted(WarningLevels))
		}
		if e.Justification, err = cleanText("emergency.justification", e.Justification, multiLine, MaxJustificationChars); err != nil {
			return err
		}
	}
	return nil
}

// checkFilingScope enforces the department's jurisdiction over the scope.
func checkFilingScope(a Actor, scope []string, regions Regions) error {
	if a.IsNational() {
		return nil
	}
	for _, code := range scope {
		if !regions.Contains(a.Jurisdiction, code) {
			return Errorf(CodeForbidden, "region %s (%s) is outside the jurisdiction of %s (%s)",
				code, regions.Name(code), a.Org, a.Jurisdiction).With("region", code)
		}
	}
	return nil
}

// canSupervise reports whether regulator a may review or stop a broadcast
// with this scope (Article 3): MIIT anywhere, a provincial administration
// only scopes wholly inside its province.
func canSupervise(a Actor, scope []string, regions Regions) bool {
	if a.Role != RoleRegulator {
		return false
	}
	if a.IsNational() {
		return true
	}
	if a.Level != LevelProvincial {
		return false
	}
	for _, code := range scope {
		if regions.Province(code) != a.Jurisdiction {
			return false
		}
	}
	return true
}

// canRead reports whether a may see b.
func canRead(a Actor, b *Broadcast, regions Regions) bool {
	switch a.Role {
	case RoleAdmin:
		return true
	case RoleDepartment:
		return a.Org == b.Department
	case RoleRegulator:
		if a.IsNational() {
			return true
		}
		return slices.Contains(b.Provinces(regions), a.Jurisdiction)
	}
	return false
}

func joinQuoted[T ~string](vs []T) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('"')
		b.WriteString(string(v))
		b.WriteByte('"')
	}
	return b.String()
}
