package tocsin

import (
	"slices"
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
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusPendingReview, StatusApproved, StatusDispatching, StatusCompleted,
	StatusRejected, StatusWithdrawn, StatusCancelled,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Final reports whether no transition leaves s.
func (s Status) Final() bool {
	switch s {
	case StatusRejected, StatusWithdrawn, StatusCancelled, StatusCompleted:
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

// Event is one entry of a broadcast's history.
type Event struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Org    string    `json:"org,omitempty"`
	By     string    `json:"by,omitempty"`
	From   Status    `json:"from,omitempty"`
	To     Status    `json:"to,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// Broadcast is a public-welfare message a department filed: what to send,
// when, where and from whom, and everything that happened to it since.
type Broadcast struct {
	ID     string `json:"id"`
	Status Status `json:"status"`

	Title     string     `json:"title"`
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
// system when a is the zero Actor).
func (b *Broadcast) record(now time.Time, a Actor, action string, from Status, note string) {
	b.History = append(b.History, Event{
		At: now, Action: action, Org: a.Org, By: a.Subject,
		From: from, To: b.Status, Note: note,
	})
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
