package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Status and message types Tocsin writes.
const (
	statusActual   = "Actual"
	statusExercise = "Exercise"
	msgAlert       = "Alert"
	msgUpdate      = "Update"
	msgCancel      = "Cancel"
	scopePublic    = "Public"
)

// Notes Tocsin writes for the public, in Chinese and English.
const (
	exerciseNote = "演习信息，非真实预警。Exercise: this is not a real warning."
	cancelNote   = "此信息已停止发送。This message has been stopped."
	// ordinaryEvent is the CAP event of a broadcast that is no emergency.
	ordinaryEvent = "公益信息"
)

// Option adjusts one Encode call.
type Option func(*options)

type options struct {
	original *tocsin.Broadcast
}

// Original gives Encode the broadcast that b corrects, so that an Update's
// references can name the original alert's sender, identifier and sent
// time as CAP requires. It is needed only for a correction.
func Original(o *tocsin.Broadcast) Option {
	return func(opts *options) { opts.original = o }
}

// Encode writes b as a CAP 1.2 alert. names returns the Chinese name of a
// region code (the full name, "广东省 广州市", reads best in areaDesc);
// baseURL is the absolute URL the server is reached at, for the web link
// and the sender's host, and may be empty.
//
// An active broadcast is an Alert (an Update when it corrects another, see
// Original); a withdrawn or cancelled one is a Cancel that references the
// original alert and, so that a stopped message is never repeated (Article
// 28), carries no info block. An exercise has status Exercise.
func Encode(b *tocsin.Broadcast, names func(code string) string, baseURL string, opts ...Option) ([]byte, error) {
	if b == nil || b.ID == "" {
		return nil, errors.New("cap: encode: no broadcast")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := alert{
		Identifier: Identifier(b),
		Sender:     Sender(b, baseURL),
		Sent:       formatTime(b.FiledAt),
		Status:     statusActual,
		MsgType:    msgAlert,
		Scope:      scopePublic,
	}
	var notes []string
	if b.Exercise {
		a.Status = statusExercise
		notes = append(notes, exerciseNote)
	}
	switch ref := b.References; {
	case b.Closure != nil:
		// The Cancel names this broadcast's own alert, whether that was
		// an Alert or an Update.
		a.MsgType = msgCancel
		a.Identifier += "-cancel"
		a.Sent = formatTime(b.Closure.At)
		a.References = reference(b, baseURL)
		notes = append(notes, cancelNote)
	case ref != "":
		if o.original == nil || o.original.ID != ref {
			return nil, fmt.Errorf("cap: encode %s: it corrects %s; pass that broadcast with cap.Original", b.ID, ref)
		}
		a.MsgType = msgUpdate
		a.References = reference(o.original, baseURL)
		fallthrough
	default:
		a.Info = []info{infoOf(b, names, baseURL)}
	}
	a.Note = strings.Join(notes, " ")

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("cap: encode %s: %w", b.ID, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Identifier is the CAP identifier of b's alert: stable, unique for its
// sender, and free of the characters CAP forbids.
func Identifier(b *tocsin.Broadcast) string { return "tocsin-" + token(b.ID) }

// Sender is the CAP sender of b: "<department id>@<host>", host being the
// host name of baseURL ("tocsin" without one). The department's Article 10
// sender code travels as the info parameter tocsin:sender_code.
func Sender(b *tocsin.Broadcast, baseURL string) string {
	host := "tocsin"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return token(b.Department) + "@" + token(host)
}

// reference names b's original alert as CAP references do:
// "sender,identifier,sent".
func reference(b *tocsin.Broadcast, baseURL string) string {
	return Sender(b, baseURL) + "," + Identifier(b) + "," + formatTime(b.FiledAt)
}

// token replaces the characters CAP 1.2 forbids in identifiers and senders
// (white space, comma, "<" and "&") so that the result is one token.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ',', '<', '&':
			return '_'
		}
		return r
	}, s)
}

func infoOf(b *tocsin.Broadcast, names func(string) string, baseURL string) info {
	t := termsOf(b.Emergency)
	// The title is internal: the public headline, and for an ordinary
	// broadcast a generic event, stand where CAP shows text to the public.
	in := info{
		Language:    Language,
		Category:    Categories(b.Emergency),
		Event:       ordinaryEvent,
		Urgency:     t.Urgency,
		Severity:    t.Severity,
		Certainty:   t.Certainty,
		Effective:   formatTime(b.SendAt),
		SenderName:  b.Agency,
		Headline:    b.PublicHeadline(),
		Description: b.Content,
	}
	if e := b.Emergency; e != nil {
		in.Event = e.Event
	}
	if b.SendUntil != nil {
		in.Expires = formatTime(*b.SendUntil)
	}
	if baseURL != "" {
		in.Web = strings.TrimRight(baseURL, "/") + "/broadcasts/" + url.PathEscape(b.ID)
	}
	if b.SenderCode != "" {
		in.Parameter = append(in.Parameter, valuePair{ParamSenderCode, b.SenderCode})
	}
	if e := b.Emergency; e != nil {
		in.Parameter = append(in.Parameter,
			valuePair{ParamEmergencyType, string(e.Type)},
			valuePair{ParamWarningLevel, string(e.Level)})
	}
	ar := area{Geocode: make([]valuePair, len(b.Scope))}
	descs := make([]string, len(b.Scope))
	for i, code := range b.Scope {
		ar.Geocode[i] = valuePair{GeocodeName, code}
		descs[i] = code
		if names != nil {
			if n := names(code); n != "" {
				descs[i] = n
			}
		}
	}
	ar.AreaDesc = strings.Join(descs, "、")
	in.Area = []area{ar}
	return in
}

// terms are CAP's urgency, severity and certainty.
type terms struct {
	Urgency, Severity, Certainty string
}

// levelTerms maps China's colour-coded warning levels onto CAP's scales:
// red is happening or imminent, orange and yellow are expected with severe
// and moderate harm, blue is the watch-level early warning.
var levelTerms = map[tocsin.WarningLevel]terms{
	tocsin.Red:    {"Immediate", "Extreme", "Observed"},
	tocsin.Orange: {"Expected", "Severe", "Likely"},
	tocsin.Yellow: {"Expected", "Moderate", "Likely"},
	tocsin.Blue:   {"Future", "Minor", "Possible"},
}

// ordinaryTerms describe a non-emergency broadcast: a public-welfare
// notice, not a hazard, so CAP's "Unknown" rather than a made-up grade.
var ordinaryTerms = terms{"Unknown", "Unknown", "Unknown"}

// termsOf returns the CAP terms of an emergency (nil for an ordinary
// broadcast).
func termsOf(e *tocsin.Emergency) terms {
	if e == nil {
		return ordinaryTerms
	}
	if t, ok := levelTerms[e.Level]; ok {
		return t
	}
	return ordinaryTerms
}

// Keywords in an emergency's event that refine its CAP category. Events are
// free text, written in Chinese or English.
var (
	geoEvents       = []string{"地震", "滑坡", "泥石流", "崩塌", "地质", "地面塌陷", "海啸", "火山", "earthquake", "landslide", "mudslide", "debris flow", "geolog", "tsunami", "volcan"}
	transportEvents = []string{"交通", "道路", "公路", "铁路", "航空", "航班", "船", "traffic", "road", "rail", "flight", "aviation", "ship", "vessel", "transport"}
	fireEvents      = []string{"火灾", "fire"}
)

// Categories returns the CAP categories of a broadcast with this emergency
// (nil for an ordinary one): a natural disaster is Met (weather, the usual
// case) or Geo for geological events; an accident is Safety, with Transport
// or Fire added when the event names one; public health is Health; social
// security is Security; an ordinary broadcast is Other.
func Categories(e *tocsin.Emergency) []string {
	if e == nil {
		return []string{"Other"}
	}
	event := strings.ToLower(e.Event)
	has := func(words []string) bool {
		for _, w := range words {
			if strings.Contains(event, w) {
				return true
			}
		}
		return false
	}
	switch e.Type {
	case tocsin.NaturalDisaster:
		if has(geoEvents) {
			return []string{"Geo"}
		}
		return []string{"Met"}
	case tocsin.Accident:
		out := []string{"Safety"}
		if has(transportEvents) {
			out = append(out, "Transport")
		}
		if has(fireEvents) {
			out = append(out, "Fire")
		}
		return out
	case tocsin.PublicHealth:
		return []string{"Health"}
	case tocsin.SocialSecurity:
		return []string{"Security"}
	}
	return []string{"Other"}
}
