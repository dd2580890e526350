package tocsin

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tocsin-dev/tocsin/provider/wire"
)

// Provider is an SMS service provider and the regions its network covers.
type Provider struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Regions   []string  `json:"regions"`
	CreatedAt time.Time `json:"created_at"`
	// NATSUser is the provider's NATS user name. NATSPasswordHash is
	// the bcrypt hash of the password of a provider registered before NATS
	// accounts were JWTs; such a provider is converted at start.
	NATSUser         string `json:"nats_user,omitempty"`
	NATSPasswordHash string `json:"nats_password_hash,omitempty"`
	// NATSAccount is the public key of the provider's NATS account and
	// NATSAccountJWT its latest signed JWT (with the revoked users);
	// NATSUserKey is the public key of its current user, empty while its
	// access is revoked. The user's seed is shown once, in its .creds
	// file, and never kept.
	NATSAccount    string `json:"nats_account,omitempty"`
	NATSAccountJWT string `json:"nats_account_jwt,omitempty"`
	NATSUserKey    string `json:"nats_user_key,omitempty"`
	// Disabled providers get no dispatches: theirs wait in the outbox
	// until the provider is enabled again.
	Disabled bool       `json:"disabled,omitempty"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// Coverage returns the codes of scope that p covers: each scope code inside
// one of p's regions, or, where p covers only part of a scope code, p's
// regions inside it.
func (p *Provider) Coverage(r Regions, scope []string) []string {
	var out []string
	add := func(code string) {
		if !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	for _, s := range scope {
		for _, c := range p.Regions {
			switch {
			case r.Contains(c, s):
				add(s)
			case r.Contains(s, c):
				add(c)
			}
		}
	}
	return out
}

// DeliveryStatus is one provider's progress on one broadcast.
type DeliveryStatus string

const (
	DeliveryQueued    DeliveryStatus = "queued"
	DeliveryReceived  DeliveryStatus = "received"
	DeliverySending   DeliveryStatus = "sending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
	DeliveryStopped   DeliveryStatus = "stopped"
)

// Final reports whether the provider has finished with the broadcast.
func (s DeliveryStatus) Final() bool {
	return s == DeliveryDelivered || s == DeliveryFailed || s == DeliveryStopped
}

// ProviderProgress tracks one provider's dispatch of one broadcast.
type ProviderProgress struct {
	Provider   string         `json:"provider"`
	Name       string         `json:"name"`
	Regions    []string       `json:"regions"`
	Status     DeliveryStatus `json:"status"`
	Recipients int            `json:"recipients"`
	Sent       int            `json:"sent"`
	Delivered  int            `json:"delivered"`
	Failed     int            `json:"failed"`
	Detail     string         `json:"detail,omitempty"`
	QueuedAt   time.Time      `json:"queued_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	// Attempts counts re-sends after the first dispatch.
	Attempts int `json:"attempts,omitempty"`
	// Late is set when an emergency dispatch was not received within the
	// configured deadline.
	Late bool `json:"late,omitempty"`
	// MsgID is the Nats-Msg-Id of the dispatch last queued for this
	// provider: republishing under it after JetStream lost messages is a
	// no-op for what it kept.
	MsgID string `json:"msg_id,omitempty"`
}

// Dispatch types on the wire.
const (
	DispatchBroadcast = wire.TypeBroadcast
	DispatchUpdate    = wire.TypeUpdate
	DispatchStop      = wire.TypeStop
)

// Dispatch is the message one provider receives for one broadcast, and
// DispatchEmergency the part of an emergency a provider needs. Both are the
// NATS contract of DESIGN.md, defined once in the dependency-free package
// providers embed.
type (
	Dispatch          = wire.Dispatch
	DispatchEmergency = wire.Emergency
)

// OutboxMessage is a dispatch waiting to be published. It is written in the
// same transaction as the state change that caused it, so neither exists
// without the other; MsgID makes a retried publish a duplicate the broker
// drops.
//
// The dispatch is held encoded, as its provider receives it: encoded once
// when it is queued, the relay publishes those very bytes (and compares
// them with what JetStream holds under a duplicate id) without decoding
// or encoding anything. BroadcastID and Type are the dispatch's own, kept
// beside it for the message's headers and the audit trail.
type OutboxMessage struct {
	Seq         uint64
	Provider    string
	MsgID       string
	BroadcastID string
	Type        string
	// EnqueuedAt is when the message became durable: the relay's lag and
	// readiness are measured from it. Zero on messages stored before it
	// was recorded.
	EnqueuedAt time.Time
	Payload    []byte // the Dispatch, JSON
}

// NewOutboxMessage is d queued for provider under msgID at enqueuedAt.
func NewOutboxMessage(provider, msgID string, enqueuedAt time.Time, d Dispatch) (OutboxMessage, error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("encode dispatch %s: %w", msgID, err)
	}
	return OutboxMessage{Provider: provider, MsgID: msgID, BroadcastID: d.BroadcastID, Type: d.Type,
		EnqueuedAt: enqueuedAt, Payload: payload}, nil
}

// Dispatch decodes the queued dispatch.
func (m OutboxMessage) Dispatch() (Dispatch, error) {
	var d Dispatch
	if err := json.Unmarshal(m.Payload, &d); err != nil {
		return d, fmt.Errorf("decode dispatch %s: %w", m.MsgID, err)
	}
	return d, nil
}

// PostHocStatus is where an emergency's after-the-fact report stands.
type PostHocStatus string

const (
	PostHocDue      PostHocStatus = "report_due"
	PostHocFiled    PostHocStatus = "report_filed"
	PostHocReviewed PostHocStatus = "reviewed"
)

// PostHocVerdict is the regulator's reading of a post-hoc report.
type PostHocVerdict string

const (
	PostHocAccepted     PostHocVerdict = "accepted"
	PostHocNotEmergency PostHocVerdict = "not_emergency"
)

// PostHoc is the report a department owes the regulator after an emergency
// broadcast (Article 17, paragraph 2).
type PostHoc struct {
	Status  PostHocStatus `json:"status"`
	DueDate string        `json:"due_date"`
	// DuePending is set while the due date falls in a year whose calendar
	// is not loaded: it is filled in when that year is loaded.
	DuePending bool `json:"due_date_pending,omitempty"`
	// Report, FiledAt and FiledBy are the latest version; Versions keeps
	// every one, oldest first, so an amendment never erases a report.
	Report     string           `json:"report,omitempty"`
	FiledAt    *time.Time       `json:"filed_at,omitempty"`
	FiledBy    string           `json:"filed_by,omitempty"`
	Versions   []PostHocVersion `json:"versions,omitempty"`
	Verdict    PostHocVerdict   `json:"verdict,omitempty"`
	Note       string           `json:"note,omitempty"`
	ReviewedBy string           `json:"reviewed_by,omitempty"`
	ReviewedAt *time.Time       `json:"reviewed_at,omitempty"`
}

// PostHocVersion is one report a department filed on an emergency: the
// first, or an amendment of it.
type PostHocVersion struct {
	Report  string    `json:"report"`
	FiledAt time.Time `json:"filed_at"`
	FiledBy string    `json:"filed_by"`
}
