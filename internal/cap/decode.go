package cap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Limits on a CAP document Tocsin reads. A real alert is a few kilobytes;
// its elements nest five deep (alert, info, area, geocode, value), an XML
// signature a few more.
const (
	MaxDocumentBytes = 256 << 10
	MaxDepth         = 32
)

// Alert is a CAP 1.2 alert read by Parse.
type Alert struct {
	Identifier string
	Sender     string
	Sent       string
	Status     string
	MsgType    string
	Scope      string

	a alert
}

// Decode reads a CAP 1.2 alert and returns the filing it asks for: Parse,
// then Filing.
func Decode(r io.Reader) (tocsin.Filing, error) {
	a, err := Parse(r)
	if err != nil {
		return tocsin.Filing{}, err
	}
	return a.Filing()
}

// Parse reads one CAP 1.2 alert from r. It refuses, with a *tocsin.Error:
// more than MaxDocumentBytes (CodeTooLarge); anything that is not
// well-formed UTF-8 XML, carries a DOCTYPE or entity declaration, nests
// deeper than MaxDepth, or whose root is not a CAP 1.2 alert (CodeInvalid).
// No entity is ever expanded and nothing outside r is ever read.
func Parse(r io.Reader) (*Alert, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		var te *tocsin.Error
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, &tocsin.Error{Code: tocsin.CodeInvalid, Message: "the CAP document could not be read", Err: err}
	}
	if len(data) > MaxDocumentBytes {
		return nil, tocsin.Errorf(tocsin.CodeTooLarge, "the CAP document is larger than %d bytes (256 KiB)", MaxDocumentBytes)
	}
	if err := screen(data); err != nil {
		return nil, err
	}
	var a Alert
	if err := xml.Unmarshal(data, &a.a); err != nil {
		return nil, notXML(err)
	}
	a.Identifier = strings.TrimSpace(a.a.Identifier)
	a.Sender = strings.TrimSpace(a.a.Sender)
	a.Sent = strings.TrimSpace(a.a.Sent)
	a.Status = strings.TrimSpace(a.a.Status)
	a.MsgType = strings.TrimSpace(a.a.MsgType)
	a.Scope = strings.TrimSpace(a.a.Scope)
	for _, req := range []struct{ name, value string }{
		{"identifier", a.Identifier}, {"sender", a.Sender}, {"sent", a.Sent},
		{"status", a.Status}, {"msgType", a.MsgType}, {"scope", a.Scope},
	} {
		if req.value == "" {
			return nil, refuse(req.name, "the CAP alert has no %s; CAP 1.2 requires one", req.name)
		}
	}
	return &a, nil
}

// screen walks data's tokens before anything is decoded and refuses what a
// CAP alert never needs and an attacker would: DOCTYPE and ENTITY
// declarations (entity expansion, external entities), deep nesting, a
// second root, and a root that is not a CAP 1.2 alert.
func screen(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return notXML(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return tocsin.Errorf(tocsin.CodeInvalid, "the CAP document has a DOCTYPE or ENTITY declaration (<!%s…>); Tocsin accepts none", firstWord(t))
		case xml.StartElement:
			depth++
			if depth > MaxDepth {
				return tocsin.Errorf(tocsin.CodeInvalid, "the CAP document nests elements more than %d deep", MaxDepth)
			}
			if depth == 1 {
				roots++
				if roots > 1 {
					return tocsin.Errorf(tocsin.CodeInvalid, "the CAP document has more than one root element; send one alert per request")
				}
				if err := checkRoot(t.Name); err != nil {
					return err
				}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return tocsin.Errorf(tocsin.CodeInvalid, "the CAP document has text outside its alert element")
			}
		}
	}
	if roots == 0 {
		return tocsin.Errorf(tocsin.CodeInvalid, "the CAP document is empty; a CAP 1.2 <alert> is required")
	}
	return nil
}

// ErrNotCAP is the cause of Parse's refusal of a well-formed document
// whose root is not a CAP 1.2 alert, so that a caller reading XML of any
// kind can tell "not CAP" from "broken CAP".
var ErrNotCAP = errors.New("not a CAP 1.2 alert")

func checkRoot(n xml.Name) error {
	var msg string
	switch {
	case n.Space == Namespace && n.Local == "alert":
		return nil
	case n.Local == "alert" && strings.HasPrefix(n.Space, "urn:oasis:names:tc:emergency:cap:"):
		msg = fmt.Sprintf("the alert is in namespace %s; Tocsin reads CAP 1.2 (%s) only", n.Space, Namespace)
	case n.Space == "":
		msg = fmt.Sprintf("the root element <%s> has no namespace; a CAP 1.2 <alert xmlns=%q> is required", n.Local, Namespace)
	default:
		msg = fmt.Sprintf("the root element is {%s}%s, not a CAP 1.2 alert (%s)", n.Space, n.Local, Namespace)
	}
	return &tocsin.Error{Code: tocsin.CodeInvalid, Message: msg, Err: ErrNotCAP}
}

// firstWord names a directive by its keyword (DOCTYPE, ENTITY, ...).
func firstWord(d xml.Directive) string {
	w, _, _ := strings.Cut(strings.TrimSpace(string(d)), " ")
	if len(w) > 20 {
		w = w[:20]
	}
	return w
}

func notXML(err error) error {
	return &tocsin.Error{Code: tocsin.CodeInvalid,
		Message: "the CAP document is not well-formed UTF-8 XML: " + strings.TrimPrefix(err.Error(), "xml: "), Err: err}
}

func refuse(field, format string, args ...any) *tocsin.Error {
	return tocsin.Errorf(tocsin.CodeValidation, format, args...).With("field", field)
}

// Key is an idempotency key for a in the filer's name: CAP identifiers are
// unique per sender, so a warning system that delivers the same alert
// twice files it once.
func (a *Alert) Key() string {
	k := "cap:" + a.Sender + "," + a.Identifier
	if len(k) <= 128 {
		return k
	}
	sum := sha256.Sum256([]byte(a.Sender + "," + a.Identifier))
	return "cap:sha256:" + hex.EncodeToString(sum[:])
}

// Filing returns what the alert asks Tocsin to broadcast. The README's CAP
// section documents the mapping; in short:
//
//   - status Actual files a broadcast, Exercise an exercise; Test, System
//     and Draft are refused;
//   - only msgType Alert and scope Public are filed;
//   - the first info in Chinese (zh, zh-CN, ...) is used, else the first in
//     English (a missing language is en-US); any other is refused;
//   - headline is the public headline and (else event) the internal
//     title, description the content;
//   - every geocode named GB/T 2260 is a scope code;
//   - effective (else sent) is send_at, expires is send_until; for an
//     emergency, which goes out at once, send_at is the latest of sent,
//     effective and onset, so that the domain refuses one of them in the
//     future (emergency_not_immediate) by its name;
//   - an alert with urgency Immediate or Expected is an emergency: its type
//     from the first category that names one, its level from severity,
//     its event from event, its justification from note (else
//     instruction; an exercise's note only says that it is one). Tocsin's own parameters tocsin:emergency_type and
//     tocsin:warning_level, when both present, decide instead, so a Tocsin
//     alert reads back exactly.
func (a *Alert) Filing() (tocsin.Filing, error) { return a.filing(false) }

// Correction is Filing for a correction of an earlier broadcast (POST
// /broadcasts/{id}/update): msgType Update is what it expects, and Alert is
// accepted too. The references element is not read: the URL names the
// broadcast corrected.
func (a *Alert) Correction() (tocsin.Filing, error) { return a.filing(true) }

func (a *Alert) filing(correction bool) (tocsin.Filing, error) {
	var f tocsin.Filing
	switch a.Status {
	case statusActual:
	case statusExercise:
		f.Exercise = true
	case "Test", "System", "Draft":
		return f, refuse("status", "a CAP alert with status %s is not filed: Tocsin sends real public-welfare messages (status Actual), or drills (status Exercise)", a.Status)
	default:
		return f, refuse("status", "status %q is not a CAP 1.2 status (Actual, Exercise, System, Test, Draft)", a.Status)
	}
	switch a.MsgType {
	case msgAlert:
	case msgUpdate:
		if !correction {
			return f, refuse("msgType", "a CAP Update is a correction, not a new broadcast; send it to POST /api/v1/broadcasts/{id}/update, {id} being the broadcast it corrects")
		}
	case msgCancel:
		return f, refuse("msgType", "a CAP Cancel is not a filing; withdraw the broadcast before release (POST /api/v1/broadcasts/{id}/withdraw) or ask the regulator to cancel it")
	case "Ack", "Error":
		return f, refuse("msgType", "a CAP %s message is not a filing; only msgType Alert is filed", a.MsgType)
	default:
		return f, refuse("msgType", "msgType %q is not a CAP 1.2 message type (Alert, Update, Cancel, Ack, Error)", a.MsgType)
	}
	if a.Scope != scopePublic {
		return f, refuse("scope", "a CAP alert with scope %s is not filed: Tocsin broadcasts to the public (scope Public)", a.Scope)
	}
	in, err := a.pickInfo()
	if err != nil {
		return f, err
	}

	f.Headline = strings.TrimSpace(in.Headline)
	f.Title = f.Headline
	if f.Title == "" {
		f.Title = strings.TrimSpace(in.Event)
	}
	f.Content = strings.TrimSpace(in.Description)
	if f.Content == "" {
		return f, refuse("content", "the CAP info has no description; it becomes the SMS content and is required")
	}
	for _, ar := range in.Area {
		for _, g := range ar.Geocode {
			if isGBT2260(g.ValueName) {
				f.Scope = append(f.Scope, strings.TrimSpace(g.Value))
			}
		}
	}
	if len(f.Scope) == 0 {
		return f, refuse("scope", "no area of the CAP info has a geocode with valueName %q; Tocsin needs GB/T 2260 region codes", GeocodeName)
	}

	sendAt := strings.TrimSpace(in.Effective)
	field := "effective"
	if sendAt == "" {
		sendAt, field = a.Sent, "sent"
	}
	t, err := parseTime(field, sendAt)
	if err != nil {
		return f, err
	}
	f.SendAt = &t
	if s := strings.TrimSpace(in.Expires); s != "" {
		t, err := parseTime("expires", s)
		if err != nil {
			return f, err
		}
		f.SendUntil = &t
	}

	// An exercise's note says that it is one (CAP 1.2, 3.2.1), which is
	// no justification.
	note := strings.TrimSpace(a.a.Note)
	if f.Exercise {
		note = ""
	}
	if f.Emergency, err = emergencyOf(in, note); err != nil || f.Emergency == nil {
		return f, err
	}
	// Emergencies are immediate: the latest time the alert names is the
	// one that must not lie ahead.
	f.SendAtFrom = field
	for _, t := range []struct{ field, value string }{{"sent", a.Sent}, {"onset", in.Onset}} {
		if strings.TrimSpace(t.value) == "" || t.field == field {
			continue
		}
		at, err := parseTime(t.field, t.value)
		if err != nil {
			return f, err
		}
		if at.After(*f.SendAt) {
			f.SendAt, f.SendAtFrom = &at, t.field
		}
	}
	return f, nil
}

// pickInfo returns the info block Tocsin files: the first in Chinese, else
// the first in English.
func (a *Alert) pickInfo() (*info, error) {
	if len(a.a.Info) == 0 {
		return nil, refuse("info", "the CAP alert has no info block; its headline, description and area are what Tocsin sends")
	}
	var english *info
	var langs []string
	for i := range a.a.Info {
		in := &a.a.Info[i]
		lang := strings.ToLower(strings.TrimSpace(in.Language))
		if lang == "" {
			lang = "en-us" // the schema's default
		}
		switch {
		case lang == "zh" || strings.HasPrefix(lang, "zh-"):
			return in, nil
		case (lang == "en" || strings.HasPrefix(lang, "en-")) && english == nil:
			english = in
		}
		langs = append(langs, in.Language)
	}
	if english != nil {
		return english, nil
	}
	return nil, refuse("info.language", "the CAP alert has no info in Chinese (zh-CN) or English, only %s", strings.Join(langs, ", "))
}

// isGBT2260 reports whether a geocode's valueName names GB/T 2260, however
// it is spaced or cased ("GB/T 2260", "GB/T2260", "gbt2260").
func isGBT2260(name string) bool {
	n := strings.ToUpper(strings.NewReplacer(" ", "", "/", "", "-", "", "_", "").Replace(name))
	return n == "GBT2260"
}

// parseTime reads a CAP dateTime. RFC 3339 forms CAP does not allow ("Z",
// fractions of a second) are accepted too: the meaning is the same. A
// time before 1970 or after 9999 is no broadcast's (and Shanghai's
// offset before 1901 was not a whole minute, which CAP cannot write).
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return t, refuse(field, "%s %q is not a CAP date and time (for example 2026-09-18T10:00:00+08:00)", field, s)
	}
	if y := t.Year(); y < 1970 || y > 9999 {
		return t, refuse(field, "%s %q is out of range: a CAP date and time between 1970 and 9999", field, s)
	}
	return t, nil
}

// categoryTypes maps CAP categories onto Article 17's emergency types.
var categoryTypes = map[string]tocsin.EmergencyType{
	"Met": tocsin.NaturalDisaster, "Geo": tocsin.NaturalDisaster, "Env": tocsin.NaturalDisaster,
	"Safety": tocsin.Accident, "Transport": tocsin.Accident, "Infra": tocsin.Accident,
	"CBRNE": tocsin.Accident, "Fire": tocsin.Accident, "Rescue": tocsin.Accident,
	"Health":   tocsin.PublicHealth,
	"Security": tocsin.SocialSecurity,
}

// severityLevels maps CAP severity onto warning levels, the inverse of
// levelTerms.
var severityLevels = map[string]tocsin.WarningLevel{
	"Extreme": tocsin.Red, "Severe": tocsin.Orange, "Moderate": tocsin.Yellow, "Minor": tocsin.Blue,
}

// emergencyOf returns the emergency an info block describes, nil for an
// ordinary filing.
func emergencyOf(in *info, note string) (*tocsin.Emergency, error) {
	var typ, level string
	for _, p := range in.Parameter {
		switch strings.TrimSpace(p.ValueName) {
		case ParamEmergencyType:
			typ = strings.TrimSpace(p.Value)
		case ParamWarningLevel:
			level = strings.TrimSpace(p.Value)
		}
	}
	justification := note
	if justification == "" {
		justification = strings.TrimSpace(in.Instruction)
	}
	event := strings.TrimSpace(in.Event)
	if typ != "" && level != "" {
		return &tocsin.Emergency{Type: tocsin.EmergencyType(typ), Event: event,
			Level: tocsin.WarningLevel(level), Justification: justification}, nil
	}
	urgency := strings.TrimSpace(in.Urgency)
	if urgency != "Immediate" && urgency != "Expected" {
		return nil, nil // a notice for later: an ordinary filing
	}
	e := &tocsin.Emergency{Event: event, Justification: justification}
	var cats []string
	for _, c := range in.Category {
		c = strings.TrimSpace(c)
		cats = append(cats, c)
		if t, ok := categoryTypes[c]; ok && e.Type == "" {
			e.Type = t
		}
	}
	if e.Type == "" {
		return nil, refuse("emergency.type",
			"an alert with urgency %s is filed as an emergency, but its category (%s) names none of Article 17's types; use Met, Geo or Env (natural disaster), Safety, Transport, Infra, CBRNE, Fire or Rescue (accident), Health (public health) or Security (social security)",
			urgency, strings.Join(cats, ", "))
	}
	severity := strings.TrimSpace(in.Severity)
	lv, ok := severityLevels[severity]
	if !ok {
		return nil, refuse("emergency.level",
			"an alert with urgency %s is filed as an emergency, but severity %q gives no warning level; use Extreme (red), Severe (orange), Moderate (yellow) or Minor (blue)",
			urgency, severity)
	}
	e.Level = lv
	return e, nil
}

// String describes the alert for logs.
func (a *Alert) String() string {
	return fmt.Sprintf("CAP %s %s from %s (%s)", a.MsgType, a.Identifier, a.Sender, a.Status)
}
