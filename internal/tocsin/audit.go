package tocsin

import (
	"context"
	"time"
)

// AuditEntry is one link of the tamper-evident trail Articles 11 and 30-32
// have regulators inspect. The store assigns Seq, Prev and Hash (SHA-256
// over the previous hash and this entry), and StateHash: the SHA-256 of
// the target's record as this transaction left it, so a changed record is
// as detectable as a changed entry.
//
// The trail is also where a broadcast's history lives: an entry with
// Event set is one of its history events, and the store gives a broadcast
// its History from them rather than keeping a second copy in the record.
type AuditEntry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Org    string    `json:"org,omitempty"`
	By     string    `json:"by,omitempty"`
	Source string    `json:"source,omitempty"` // client address
	Target string    `json:"target"`           // broadcast, organisation or provider id
	Before string    `json:"before,omitempty"` // status before
	After  string    `json:"after,omitempty"`  // status after
	Note   string    `json:"note,omitempty"`
	// Params are a history event's parameters (Event.Params).
	Params    map[string]any `json:"params,omitempty"`
	StateHash string         `json:"state_hash,omitempty"`
	Prev      string         `json:"prev"`
	Hash      string         `json:"hash"`
	// Event marks an entry that is one of the target broadcast's history
	// events.
	Event bool `json:"-"`
}

// HistoryEvent is the history event e records, for an entry with Event
// set.
func (e AuditEntry) HistoryEvent() Event {
	return Event{At: e.At, Action: e.Action, Org: e.Org, By: e.By, From: Status(e.Before), To: Status(e.After), Note: e.Note, Params: e.Params}
}

// Audit actions that are not broadcast history events.
const (
	AuditRefused           = "refused"
	AuditReceipt           = "receipt"
	AuditDispatchPublished = "dispatch_published"
	// AuditDispatchRenewed: a dispatch got a fresh Nats-Msg-Id after
	// JetStream took its first for a different message's.
	AuditDispatchRenewed = "dispatch_renewed"
	AuditPurged          = "purged"
	AuditOrganisation    = "organisation_saved"
	AuditProvider        = "provider_saved"
)

type sourceKey struct{}

// WithSource returns ctx carrying the client address of the request, for
// the audit trail.
func WithSource(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// SourceFrom returns the client address WithSource stored.
func SourceFrom(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// auditHistory appends an audit entry for every history event b gained
// since it had from events, and tells b's department what it has not yet
// been told (inbox.go). Call it after PutBroadcast, so the entries carry
// the hash of the record as written.
func auditHistory(ctx context.Context, tx Tx, b *Broadcast, from int) error {
	for _, e := range b.History[from:] {
		err := tx.Audit(AuditEntry{
			At: e.At, Action: e.Action, Org: e.Org, By: e.By, Source: SourceFrom(ctx),
			Target: b.ID, Before: string(e.From), After: string(e.To), Note: e.Note, Params: e.Params, Event: true,
		})
		if err != nil {
			return err
		}
	}
	_, err := notifyDepartment(tx, b, lastChange(b))
	return err
}

// Timeline returns the audit entries about one broadcast, oldest first,
// for a reader allowed to see it. Client addresses (Source) are for
// supervision: only regulators and the admin read them, and a department
// gets each entry without one (its hash still covers it, so such a copy
// cannot be checked against the chain; the full trail can).
func (s *Service) Timeline(ctx context.Context, a Actor, id string) ([]AuditEntry, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	var out []AuditEntry
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Timeline(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !SeesSources(a) {
		for i := range out {
			out[i].Source = ""
		}
	}
	return out, nil
}

// SeesSources reports whether a may read the client addresses the audit
// trail keeps: regulators and the admin may, departments never.
func SeesSources(a Actor) bool {
	return a.Role == RoleRegulator || a.Role == RoleAdmin
}
