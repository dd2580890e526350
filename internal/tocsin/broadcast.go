package tocsin

import (
	"slices"
	"strings"
	"time"
)

// Status is where a broadcast stands in its lifecycle.
type Status string

const (
	StatusPendingReview Status = "pending_review"
	StatusApproved      Status = "approved"
	StatusRejected      Status = "rejected"
	StatusWithdrawn     Status = "withdrawn"
	StatusCancelled     Status = "cancelled"
	StatusDispatching   Status = "dispatching"
	StatusCompleted     Status = "completed"
	// StatusExpired is a broadcast whose send window (send_until) closed
	// before it finished: providers still sending were told to stop.
	StatusExpired Status = "expired"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusPendingReview, StatusApproved, StatusDispatching, StatusCompleted,
	StatusRejected, StatusWithdrawn, StatusCancelled, StatusExpired,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Final reports whether no transition leaves s.
func (s Status) Final() bool {
	switch s {
	case StatusRejected, StatusWithdrawn, StatusCancelled, StatusCompleted, StatusExpired:
		return true
	}
	return false
}

// EmergencyType is the class of emergency under Article 17.
type EmergencyType string

const (
	NaturalDisaster EmergencyType = "natural_disaster"
	Accident        EmergencyType = "accident"
	PublicHealth    EmergencyType = "public_health"
	SocialSecurity  EmergencyType = "social_security"
)

// EmergencyTypes lists the emergency types Article 17 names.
var EmergencyTypes = []EmergencyType{NaturalDisaster, Accident, PublicHealth, SocialSecurity}

// WarningLevel is the colour-coded severity of a Chinese early warning, red
// being the most severe.
type WarningLevel string

const (
	Red    WarningLevel = "red"
	Orange WarningLevel = "orange"
	Yellow WarningLevel = "yellow"
	Blue   WarningLevel = "blue"
)

// WarningLevels lists the levels from most to least severe.
var WarningLevels = []WarningLevel{Red, Orange, Yellow, Blue}

// Emergency marks a filing as an emergency: it is released at once, without
// review, and the department reports to the regulator afterwards.
type Emergency struct {
	Type          EmergencyType `json:"type"`
	Event         string        `json:"event"`
	Level         WarningLevel  `json:"level"`
	Justification string        `json:"justification,omitempty"`
}

// ReasonCode classifies why a regulator rejected a filing.
type ReasonCode string

const (
	ReasonNotPublicWelfare ReasonCode = "not_public_welfare" // Article 37(6)
	ReasonContent          ReasonCode = "content"
	ReasonScope            ReasonCode = "scope"
	ReasonTiming           ReasonCode = "timing"
	ReasonOther            ReasonCode = "other"
)

// ReasonCodes lists the accepted rejection reason codes.
var ReasonCodes = []ReasonCode{ReasonNotPublicWelfare, ReasonContent, ReasonScope, ReasonTiming, ReasonOther}

// Decision is a reviewer's verdict.
type Decision string

const (
	DecisionApproved Decision = "approved"
	DecisionRejected Decision = "rejected"
)

// Review records the regulator's decision on a filing. The department reads
// the reason back from here (Article 17: informed promptly, with reasons).
type Review struct {
	Decision   Decision   `json:"decision"`
	Regulator  string     `json:"regulator"`
	By         string     `json:"by"`
	At         time.Time  `json:"at"`
	ReasonCode ReasonCode `json:"reason_code,omitempty"`
	Reason     string     `json:"reason,omitempty"`
}

// Closure records who ended a broadcast early, and why.
type Closure struct {
	Action Status    `json:"action"`
	Org    string    `json:"org"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Event is one entry of a broadcast's history. Action is its kind and
// Params its parameters (see the Param* keys), which user interfaces
// translate; Note is the same in English words, for the audit trail and
// for readers of records written before events had parameters.
type Event struct {
	At     time.Time      `json:"at"`
	Action string         `json:"action"`
	Org    string         `json:"org,omitempty"`
	By     string         `json:"by,omitempty"`
	From   Status         `json:"from,omitempty"`
	To     Status         `json:"to,omitempty"`
	Note   string         `json:"note,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// Keys of Event.Params.
const (
	ParamProviders  = "providers"   // released: how many providers got a dispatch
	ParamDelivered  = "delivered"   // completed
	ParamFailed     = "failed"      // completed
	ParamNoProvider = "no_provider" // completed: no registered provider covers the scope
	ParamProvider   = "provider"    // late, resent, dispatch_failed: the provider id
	ParamWithin     = "within"      // late: the deadline, as a Go duration ("30s")
	ParamReasonCode = "reason_code" // rejected
	ParamReason     = "reason"      // rejected, withdrawn, cancelled, dispatch_failed: as typed or reported
	ParamVerdict    = "verdict"     // post_hoc_reviewed
	ParamDue        = "due"         // post_hoc_due_set: YYYY-MM-DD
	ParamStopped    = "stopped"     // expired, cancelled: how many providers were sent a stop
	ParamCorrection = "correction"  // correction_filed, superseded: the correction's id
	ParamVersion    = "version"     // post_hoc_filed, post_hoc_amended: 1 for the first report
)

// String returns the string parameter key, "" if it is absent.
func (e Event) String(key string) string {
	s, _ := e.Params[key].(string)
	return s
}

// Int returns the number parameter key and whether it is present. A
// parameter read back from JSON is a float64, one just recorded an int.
func (e Event) Int(key string) (int, bool) {
	switch v := e.Params[key].(type) {
	case int:
		return v, true
	case float64:
		return int(v), true
	}
	return 0, false
}

// Broadcast is a public-welfare message a department filed: what to send,
// when, where and from whom, and everything that happened to it since.
type Broadcast struct {
	ID     string `json:"id"`
	Status Status `json:"status"`

	// Title is the department's internal name for the filing; it never
	// appears in a public document (CAP, Atom, public pages).
	Title string `json:"title"`
	// Headline is the public headline, if the department wrote one; see
	// PublicHeadline.
	Headline  string     `json:"headline,omitempty"`
	Content   string     `json:"content"`
	Scope     []string   `json:"scope"`
	SendAt    time.Time  `json:"send_at"`
	SendUntil *time.Time `json:"send_until,omitempty"`
	Emergency *Emergency `json:"emergency,omitempty"`
	Exercise  bool       `json:"exercise"`
	SMS       SMSInfo    `json:"sms"`

	Department string    `json:"department"`
	Agency     string    `json:"agency"`
	SenderCode string    `json:"sender_code"`
	FiledBy    string    `json:"filed_by"`
	FiledAt    time.Time `json:"filed_at"`
	// References is the broadcast this one corrects, if it is an update.
	References string `json:"references,omitempty"`
	// CorrectedBy lists the corrections filed of this broadcast, oldest
	// first.
	CorrectedBy []string `json:"corrected_by,omitempty"`
	// HeldBy is the correction whose filing held this approved broadcast
	// back: it is not released while held, so its uncorrected text never
	// goes out, and it is withdrawn when a correction of it is approved.
	HeldBy string `json:"held_by,omitempty"`
	// EarliestSendDate is the first permitted send date (YYYY-MM-DD) at
	// filing time; empty for emergencies, which do not wait.
	EarliestSendDate string `json:"earliest_send_date,omitempty"`

	Review      *Review    `json:"review,omitempty"`
	Closure     *Closure   `json:"closure,omitempty"`
	ReleasedAt  *time.Time `json:"released_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`

	Providers []ProviderProgress `json:"providers"`
	PostHoc   *PostHoc           `json:"post_hoc,omitempty"`
	History   []Event            `json:"history"`
}

// IsEmergency reports whether b skipped review as an emergency.
func (b *Broadcast) IsEmergency() bool { return b.Emergency != nil }

// record appends a history entry for a transition made by a (or by the
// system when a is the zero Actor), with its parameters, if any.
func (b *Broadcast) record(now time.Time, a Actor, action string, from Status, note string, params map[string]any) {
	b.History = append(b.History, Event{
		At: now, Action: action, Org: a.Org, By: a.Subject,
		From: from, To: b.Status, Note: note, Params: params,
	})
}

// Scheduled reports whether b waits for the scheduler to release it at its
// send time: approved, and not held back by a correction.
func (b *Broadcast) Scheduled() bool { return b.Status == StatusApproved && b.HeldBy == "" }

// Public reports whether b went out to the public, so that anyone may read
// its public documents (CAP, Atom) without a token: released, not an
// exercise, and dispatching, completed, expired, or cancelled after
// release (whose CAP Cancel repeats nothing of the stopped message).
func (b *Broadcast) Public() bool {
	if b == nil || b.Exercise || b.ReleasedAt == nil {
		return false
	}
	switch b.Status {
	case StatusDispatching, StatusCompleted, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// MaxDerivedHeadline bounds a headline derived from the content.
const MaxDerivedHeadline = 40

// PublicHeadline is the headline public documents carry: the Headline the
// department wrote, or else the content's first sentence, cut at
// MaxDerivedHeadline characters. Never the Title, which is internal.
func (b *Broadcast) PublicHeadline() string {
	if h := strings.TrimSpace(b.Headline); h != "" {
		return h
	}
	return DeriveHeadline(b.Content)
}

// DeriveHeadline returns the first sentence of content (up to and with
// its closing 。！？!? or a full stop followed by a space, or the first
// line), cut to MaxDerivedHeadline characters with an ellipsis.
func DeriveHeadline(content string) string {
	text := strings.TrimSpace(content)
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	// A bracketed sender signature (【广东省气象局】) opens many Chinese
	// SMS; it is not the news.
	if strings.HasPrefix(text, "【") {
		if _, rest, ok := strings.Cut(text, "】"); ok && strings.TrimSpace(rest) != "" {
			text = strings.TrimSpace(rest)
		}
	}
	runes := []rune(text)
	for i, r := range runes {
		end := false
		switch r {
		case '。', '！', '？', '!', '?':
			end = true
		case '.':
			end = i+1 == len(runes) || runes[i+1] == ' '
		}
		if end {
			runes = runes[:i+1]
			break
		}
	}
	if len(runes) > MaxDerivedHeadline {
		return strings.TrimSpace(string(runes[:MaxDerivedHeadline-1])) + "…"
	}
	return string(runes)
}

// Provinces returns the distinct provinces b's scope touches, in scope order.
func (b *Broadcast) Provinces(r Regions) []string {
	var out []string
	for _, code := range b.Scope {
		if p := r.Province(code); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Query selects broadcasts for a listing. Zero fields match everything.
type Query struct {
	Status     []Status
	Department string
	Province   string // scope touches this province
	Emergency  *bool
	PostHoc    PostHocFilter
	Now        time.Time // for PostHocOverdue
	Limit      int
	Cursor     string // the last ID of the previous page
	// WithoutHistory lets the store leave History empty: for the scans
	// that look at status and providers only, which would otherwise read
	// every broadcast's events from the audit trail too.
	WithoutHistory bool
}

// PostHocFilter selects emergencies by the state of their post-hoc report.
type PostHocFilter string

const (
	PostHocFilterDue      PostHocFilter = "report_due"
	PostHocFilterFiled    PostHocFilter = "report_filed"
	PostHocFilterReviewed PostHocFilter = "reviewed"
	PostHocFilterOverdue  PostHocFilter = "overdue"
	// PostHocFilterFlagged selects filings a regulator found not to be
	// emergencies: the flags on a department's record.
	PostHocFilterFlagged PostHocFilter = "not_emergency"
)

// Valid reports whether f is a known filter.
func (f PostHocFilter) Valid() bool {
	switch f {
	case PostHocFilterDue, PostHocFilterFiled, PostHocFilterReviewed, PostHocFilterOverdue, PostHocFilterFlagged:
		return true
	}
	return false
}

// Matches reports whether a broadcast with post-hoc state p passes f.
func (f PostHocFilter) Matches(p *PostHoc, now time.Time) bool {
	if p == nil {
		return false
	}
	switch f {
	case PostHocFilterOverdue:
		return p.Overdue(now)
	case PostHocFilterFlagged:
		return p.Verdict == PostHocNotEmergency
	}
	return string(p.Status) == string(f)
}

// Page is one page of a listing, newest first.
type Page struct {
	Broadcasts []*Broadcast `json:"broadcasts"`
	NextCursor string       `json:"next_cursor,omitempty"`
}
