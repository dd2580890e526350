package tocsin

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Service carries out the use cases of the coordinator: filing, review,
// withdrawal, cancellation, release and post-hoc reporting. Every change is
// one Store transaction that also enqueues the dispatches it causes.
type Service struct {
	Store    Store
	Calendar Calendar
	Regions  Regions
	Clock    Clock
	// PostHocWorkingDays is how many working days after release an
	// emergency's post-hoc report is due.
	PostHocWorkingDays int
	// Published is called after a commit that enqueued dispatches, to wake
	// the outbox publisher. It must not block.
	Published func()

	// refusals bounds the audit entries of refused receipts.
	refusals refusalLog
}

// DefaultPostHocWorkingDays is the post-hoc deadline unless configured.
const DefaultPostHocWorkingDays = 5

// Page sizes for listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// File files a broadcast for the actor's department. With a non-empty
// idempotencyKey, a retry of the same filing returns the first result and
// replayed is true; the same key with a different filing is refused.
func (s *Service) File(ctx context.Context, a Actor, f Filing, idempotencyKey string) (*Broadcast, bool, error) {
	return s.file(ctx, a, f, idempotencyKey, "")
}

// FileUpdate files a correction of an earlier broadcast of the same
// department. It is reviewed like any filing (and released at once if it
// is an emergency); providers receive it as type "update" referencing the
// original, and its CAP form is msgType Update. The original lists it in
// CorrectedBy.
//
// A correction of an approved broadcast that has not been released holds
// the original back from the moment it is filed (HeldBy): the scheduler
// does not release a held broadcast, so the uncorrected text never goes
// out once its correction was filed, whatever the correction's review
// takes. When a correction is approved (or, as an emergency, released),
// the held original is withdrawn, audited, in the same transaction. A
// correction that is rejected or withdrawn leaves the original held: the
// department withdraws it or files another correction.
func (s *Service) FileUpdate(ctx context.Context, a Actor, originalID string, f Filing, idempotencyKey string) (*Broadcast, bool, error) {
	original, err := s.Get(ctx, a, originalID)
	if err != nil {
		return nil, false, err
	}
	if err := canCorrect(a, original); err != nil {
		return nil, false, err
	}
	return s.file(ctx, a, f, idempotencyKey, originalID)
}

// canCorrect says whether a may file a correction of b.
func canCorrect(a Actor, b *Broadcast) error {
	if a.Role != RoleDepartment || a.Org != b.Department {
		return Errorf(CodeForbidden, "only the filing department may correct broadcast %s", b.ID)
	}
	switch b.Status {
	case StatusApproved, StatusDispatching, StatusCompleted:
		return nil
	}
	return conflict(b, "corrected (withdraw a pending filing and file again)",
		StatusApproved, StatusDispatching, StatusCompleted)
}

func (s *Service) file(ctx context.Context, a Actor, f Filing, idempotencyKey, references string) (b *Broadcast, replayed bool, err error) {
	defer func() {
		if code := ErrorCode(err); code != "" && code != CodeInternal && code != CodeUnavailable {
			s.auditRefusal(ctx, a, err)
		}
	}()
	if err := checkFiler(a); err != nil {
		return nil, false, err
	}
	var hash string // only a keyed filing is compared with an earlier one
	if idempotencyKey != "" {
		hash = filingHash(f)
		err := s.Store.View(ctx, func(tx ReadTx) error {
			b, replayed, err = replay(tx, a.Org, idempotencyKey, hash)
			return err
		})
		if err != nil || replayed {
			return b, replayed, err
		}
	}
	if err := validateContent(&f, s.Regions); err != nil {
		return nil, false, err
	}
	if err := checkFilingScope(a, f.Scope, s.Regions); err != nil {
		return nil, false, err
	}
	now := s.now()
	sendAt, earliest, err := s.checkTiming(f, now)
	if err != nil {
		return nil, false, err
	}

	released := false
	err = s.Store.Update(ctx, func(tx Tx) error {
		b, replayed, released = nil, false, false
		if idempotencyKey != "" {
			var err error
			if b, replayed, err = replay(tx, a.Org, idempotencyKey, hash); err != nil || replayed {
				return err
			}
		}
		org, err := tx.Organisation(a.Org)
		if IsCode(err, CodeNotFound) {
			return Errorf(CodeForbidden, "organisation %s is not registered", a.Org)
		} else if err != nil {
			return err
		}
		if org.Role != RoleDepartment {
			return Errorf(CodeForbidden, "organisation %s is not a government department", a.Org)
		}
		id, err := tx.NewBroadcastID()
		if err != nil {
			return err
		}
		var original *Broadcast
		if references != "" {
			// Checked again here: the original may have changed since
			// FileUpdate read it.
			if original, err = tx.Broadcast(references); err != nil {
				return err
			}
			if err := canCorrect(a, original); err != nil {
				return err
			}
		}
		b = &Broadcast{
			ID: id, Status: StatusPendingReview,
			Title: f.Title, Headline: f.Headline, Content: f.Content, Scope: f.Scope,
			SendAt: sendAt, SendUntil: f.SendUntil, Emergency: f.Emergency, Exercise: f.Exercise,
			SMS:        MeasureSMS(f.Content),
			Department: org.ID, Agency: org.AgencyName(), SenderCode: org.SenderCode,
			FiledBy: a.Subject, FiledAt: now, References: references,
		}
		if !earliest.IsZero() {
			b.EarliestSendDate = earliest.Format(DateLayout)
		}
		if b.IsEmergency() {
			b.Status = "" // an emergency is never pending review
		}
		b.record(now, a, "filed", "", "", nil)
		if b.IsEmergency() {
			if err := s.release(tx, b, now); err != nil {
				return err
			}
			released = true
		}
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		if err := auditHistory(ctx, tx, b, 0); err != nil {
			return err
		}
		if original != nil {
			if err := s.linkCorrection(ctx, tx, original, b, a, now); err != nil {
				return err
			}
		}
		if idempotencyKey != "" {
			return tx.PutIdempotency(a.Org, idempotencyKey, IdempotencyRecord{BroadcastID: id, RequestHash: hash, At: now})
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if released {
		s.published()
	}
	return b, replayed, nil
}

// auditRefusal records a refused filing in the audit trail. The refusal
// has been decided already; a failure to record it is logged by the store
// and does not change the answer.
func (s *Service) auditRefusal(ctx context.Context, a Actor, refusal error) {
	_ = s.Store.Update(context.WithoutCancel(ctx), func(tx Tx) error {
		return tx.Audit(AuditEntry{
			At: s.now(), Action: AuditRefused, Org: a.Org, By: a.Subject, Source: SourceFrom(ctx),
			Target: a.Org, Note: string(ErrorCode(refusal)) + ": " + ErrorMessage(refusal),
		})
	})
}

// replay returns the broadcast an earlier filing with key created.
func replay(tx ReadTx, org, key, hash string) (*Broadcast, bool, error) {
	rec, ok, err := tx.Idempotency(org, key)
	if err != nil || !ok {
		return nil, false, err
	}
	if rec.RequestHash != hash {
		return nil, false, Errorf(CodeIdempotencyReuse,
			"Idempotency-Key %q was already used for a different filing (%s)", key, rec.BroadcastID).
			With("broadcast_id", rec.BroadcastID)
	}
	b, err := tx.Broadcast(rec.BroadcastID)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func filingHash(f Filing) string {
	data, _ := json.Marshal(f) // a Filing always marshals
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkTiming applies the send-time rules and returns the send time to use
// and, for an ordinary filing, the earliest permitted send date. An
// emergency goes out now: its send_at may be omitted, or lie at most
// SendAtSlack ahead (clock skew), and it is recorded as sent now.
func (s *Service) checkTiming(f Filing, now time.Time) (sendAt, earliest time.Time, err error) {
	if f.Emergency != nil {
		sendAt = now
		if f.SendAt != nil {
			field := cmp.Or(f.SendAtFrom, "send_at")
			if f.SendAt.Before(now.Add(-SendAtSlack)) {
				return sendAt, earliest, invalid(field, "%s %s is in the past", field, f.SendAt.Format(time.RFC3339))
			}
			if err := CheckImmediate(field, *f.SendAt, now); err != nil {
				return sendAt, earliest, err
			}
		}
	} else {
		if f.SendAt == nil {
			return sendAt, earliest, invalid("send_at", "send_at is required (RFC 3339, e.g. 2026-12-20T09:00:00+08:00)")
		}
		sendAt = *f.SendAt
		if !sendAt.After(now) {
			return sendAt, earliest, invalid("send_at", "send_at %s is not in the future", sendAt.Format(time.RFC3339))
		}
		earliest, err = s.Calendar.EarliestSendDate(now)
		if err != nil {
			return sendAt, earliest, calendarError(err)
		}
		if DateOf(sendAt).Before(earliest) {
			return sendAt, earliest, Errorf(CodeTooLate,
				"a non-emergency broadcast filed on %s must be sent on or after %s, the %dth working day after filing (Article 17)",
				DateOf(now).Format(DateLayout), earliest.Format(DateLayout), 10).
				With("earliest_send_date", earliest.Format(DateLayout)).
				With("filed", DateOf(now).Format(DateLayout))
		}
	}
	if f.SendUntil != nil && !f.SendUntil.After(sendAt) {
		return sendAt, earliest, invalid("send_until", "send_until must be after send_at")
	}
	return sendAt, earliest, nil
}

// CheckImmediate refuses an emergency time (field: send_at, or a CAP
// alert's sent, effective or onset) more than SendAtSlack after now:
// Article 17's emergencies go out at once, and one meant for later is an
// ordinary filing, reviewed first. The CAP intake asks it about every time
// the alert carries.
func CheckImmediate(field string, t, now time.Time) error {
	if !t.After(now.Add(SendAtSlack)) {
		return nil
	}
	return Errorf(CodeNotImmediate,
		"an emergency is sent at once, but its %s is %s, more than %d minutes from now; file a message for later as an ordinary broadcast (without emergency), which the regulator reviews before its send time",
		field, t.In(Shanghai).Format(time.RFC3339), int(SendAtSlack/time.Minute)).
		With("field", field).With("latest", now.Add(SendAtSlack).Format(time.RFC3339))
}

// calendarError turns a calendar's missing-year error into a domain error
// that names the year.
func calendarError(err error) error {
	var missing interface{ MissingYear() int }
	if errors.As(err, &missing) {
		return &Error{Code: CodeCalendarMissing, Message: err.Error(),
			Details: map[string]any{"year": missing.MissingYear()}, Err: err}
	}
	return fmt.Errorf("calendar: %w", err)
}

// EarliestSendDate returns the earliest permitted send date for a filing
// made on the given day.
func (s *Service) EarliestSendDate(filed time.Time) (time.Time, error) {
	d, err := s.Calendar.EarliestSendDate(filed)
	if err != nil {
		return d, calendarError(err)
	}
	return d, nil
}

// Get returns a broadcast the actor may see.
func (s *Service) Get(ctx context.Context, a Actor, id string) (*Broadcast, error) {
	var b *Broadcast
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		b, err = tx.Broadcast(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !canRead(a, b, s.Regions) {
		return nil, Errorf(CodeForbidden, "broadcast %s is outside your jurisdiction", id)
	}
	return b, nil
}

// List returns the broadcasts the actor may see that match q.
func (s *Service) List(ctx context.Context, a Actor, q Query) (Page, error) {
	switch a.Role {
	case RoleDepartment:
		q.Department = a.Org
	case RoleRegulator:
		if !a.IsNational() {
			q.Province = a.Jurisdiction
		}
	case RoleAdmin:
	default:
		return Page{}, Errorf(CodeForbidden, "role %q may not list broadcasts", a.Role)
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Now = s.now()
	q.Limit = min(q.Limit, MaxPageSize)
	var p Page
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		p, err = tx.Broadcasts(q)
		return err
	})
	return p, err
}

// change runs one transition on broadcast id in its own transaction.
func (s *Service) change(ctx context.Context, id string, fn func(tx Tx, b *Broadcast, now time.Time) error) (*Broadcast, error) {
	var out *Broadcast
	queued := false
	err := s.Store.Update(ctx, func(tx Tx) error {
		b, err := tx.Broadcast(id)
		if err != nil {
			return err
		}
		watched := &enqueueWatch{Tx: tx}
		events := len(b.History)
		if err := fn(watched, b, s.now()); err != nil {
			return err
		}
		queued, out = watched.enqueued, b
		if len(b.History) == events {
			return nil // nothing happened: nothing to write
		}
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		return auditHistory(ctx, tx, b, events)
	})
	if err != nil {
		return nil, err
	}
	if queued {
		s.published()
	}
	return out, nil
}

// enqueueWatch notes whether a transaction enqueued anything, so the
// publisher is woken only when there is work.
type enqueueWatch struct {
	Tx
	enqueued bool
}

func (w *enqueueWatch) Enqueue(m OutboxMessage) error {
	w.enqueued = true
	return w.Tx.Enqueue(m)
}

// now is the service clock's time in Asia/Shanghai, so every recorded time
// reads as local time to the people who use the system.
func (s *Service) now() time.Time { return s.Clock.Now().In(Shanghai) }

func (s *Service) published() {
	if s.Published != nil {
		s.Published()
	}
}

func (s *Service) supervise(a Actor, b *Broadcast) error {
	if a.Role != RoleRegulator {
		return Errorf(CodeForbidden, "only a regulator may do this")
	}
	if !canSupervise(a, b.Scope, s.Regions) {
		if len(b.Provinces(s.Regions)) > 1 {
			return Errorf(CodeForbidden, "broadcast %s spans several provinces; only the national regulator (MIIT) may act on it", b.ID)
		}
		return Errorf(CodeForbidden, "broadcast %s is outside the jurisdiction of %s", b.ID, a.Org)
	}
	return nil
}

func conflict(b *Broadcast, verb string, allowed ...Status) error {
	names := make([]string, len(allowed))
	for i, s := range allowed {
		names[i] = string(s)
	}
	return Errorf(CodeConflict, "broadcast %s is %s; only a broadcast that is %s can be %s",
		b.ID, b.Status, strings.Join(names, " or "), verb).With("status", string(b.Status))
}

// Approve approves a pending filing. If its send time has already come, it
// is released in the same transaction.
func (s *Service) Approve(ctx context.Context, a Actor, id string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if err := s.supervise(a, b); err != nil {
			return err
		}
		if b.Status != StatusPendingReview {
			return conflict(b, "approved", StatusPendingReview)
		}
		if b.SendUntil != nil && now.After(*b.SendUntil) {
			return Errorf(CodeConflict, "broadcast %s's send window closed at %s", b.ID, b.SendUntil.Format(time.RFC3339))
		}
		b.Status = StatusApproved
		b.Review = &Review{Decision: DecisionApproved, Regulator: a.Org, By: a.Subject, At: now}
		b.record(now, a, "approved", StatusPendingReview, "", nil)
		if err := s.supersede(ctx, tx, b, now); err != nil {
			return err
		}
		if !b.SendAt.After(now) {
			return s.release(tx, b, now)
		}
		return nil
	})
}

// linkCorrection records, on the original, that correction was filed of
// it, and holds the original back if it is approved and not yet released
// (see FileUpdate). An emergency correction, released already, supersedes
// the original at once.
func (s *Service) linkCorrection(ctx context.Context, tx Tx, original, correction *Broadcast, a Actor, now time.Time) error {
	events := len(original.History)
	original.CorrectedBy = append(original.CorrectedBy, correction.ID)
	note := "correction " + correction.ID + " filed"
	if original.Status == StatusApproved {
		original.HeldBy = correction.ID
		note += "; held back from release until it is reviewed"
	}
	original.record(now, a, "correction_filed", original.Status, note, map[string]any{ParamCorrection: correction.ID})
	if correction.Status == StatusDispatching || correction.Status == StatusCompleted {
		return s.supersedeOriginal(ctx, tx, original, events, correction, now)
	}
	return s.putWithHistory(ctx, tx, original, events)
}

// supersede withdraws the broadcast that b, just approved, corrects, if
// that one is still approved and unreleased: the corrected text replaces
// it.
func (s *Service) supersede(ctx context.Context, tx Tx, b *Broadcast, now time.Time) error {
	if b.References == "" {
		return nil
	}
	original, err := tx.Broadcast(b.References)
	if IsCode(err, CodeNotFound) {
		return nil // purged
	} else if err != nil {
		return err
	}
	return s.supersedeOriginal(ctx, tx, original, len(original.History), b, now)
}

func (s *Service) supersedeOriginal(ctx context.Context, tx Tx, original *Broadcast, events int, correction *Broadcast, now time.Time) error {
	if original.Status == StatusApproved {
		original.Status = StatusWithdrawn
		original.HeldBy = ""
		reason := "superseded by correction " + correction.ID
		original.Closure = &Closure{Action: StatusWithdrawn, Org: correction.Department, By: "system", At: now, Reason: reason}
		original.record(now, Actor{}, "superseded", StatusApproved, reason,
			map[string]any{ParamCorrection: correction.ID})
	}
	return s.putWithHistory(ctx, tx, original, events)
}

// putWithHistory writes b, changed in tx besides the broadcast a
// transition is about, and audits its history from events on.
func (s *Service) putWithHistory(ctx context.Context, tx Tx, b *Broadcast, events int) error {
	if len(b.History) == events {
		return nil
	}
	if err := tx.PutBroadcast(b); err != nil {
		return err
	}
	return auditHistory(ctx, tx, b, events)
}

// Reject refuses a pending filing with a reason the department reads back.
func (s *Service) Reject(ctx context.Context, a Actor, id string, code ReasonCode, reason string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if err := s.supervise(a, b); err != nil {
			return err
		}
		reason, err := cleanText("reason", reason, multiLine, MaxReasonChars)
		switch {
		case code == "":
			return Errorf(CodeReasonRequired, "a rejection needs a reason_code (one of %s)", joinQuoted(ReasonCodes)).With("field", "reason_code")
		case !slices.Contains(ReasonCodes, code):
			return invalid("reason_code", "reason_code %q is not one of %s", code, joinQuoted(ReasonCodes))
		case err != nil:
			return err
		case Blank(reason):
			return Errorf(CodeReasonRequired, "a rejection needs a reason the department can read").With("field", "reason")
		}
		if b.Status != StatusPendingReview {
			return conflict(b, "rejected", StatusPendingReview)
		}
		b.Status = StatusRejected
		b.Review = &Review{Decision: DecisionRejected, Regulator: a.Org, By: a.Subject, At: now, ReasonCode: code, Reason: reason}
		b.record(now, a, "rejected", StatusPendingReview, string(code)+": "+reason,
			map[string]any{ParamReasonCode: string(code), ParamReason: reason})
		return nil
	})
}

// Withdraw lets the filing department take back a broadcast before it is
// released.
func (s *Service) Withdraw(ctx context.Context, a Actor, id string, reason string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if a.Role != RoleDepartment || a.Org != b.Department {
			return Errorf(CodeForbidden, "only the filing department may withdraw broadcast %s", b.ID)
		}
		if b.Status != StatusPendingReview && b.Status != StatusApproved {
			return conflict(b, "withdrawn (once released, ask the regulator to cancel)", StatusPendingReview, StatusApproved)
		}
		reason, err := requireReason("withdrawal", reason)
		if err != nil {
			return err
		}
		from := b.Status
		b.Status, b.HeldBy = StatusWithdrawn, ""
		b.Closure = &Closure{Action: StatusWithdrawn, Org: a.Org, By: a.Subject, At: now, Reason: reason}
		b.record(now, a, "withdrawn", from, b.Closure.Reason, map[string]any{ParamReason: reason})
		return nil
	})
}

// Cancel lets a regulator stop a broadcast. One that is dispatching gets a
// stop sent to every provider that has not finished (Article 28).
func (s *Service) Cancel(ctx context.Context, a Actor, id string, reason string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if err := s.supervise(a, b); err != nil {
			return err
		}
		from := b.Status
		switch from {
		case StatusPendingReview, StatusApproved, StatusDispatching:
		default:
			return conflict(b, "cancelled", StatusPendingReview, StatusApproved, StatusDispatching)
		}
		reason, err := requireReason("cancellation", reason)
		if err != nil {
			return err
		}
		stopped := 0
		if from == StatusDispatching {
			if stopped, err = s.stopProviders(tx, b, now, "stop sent"); err != nil {
				return err
			}
		}
		b.Status, b.HeldBy = StatusCancelled, ""
		b.Closure = &Closure{Action: StatusCancelled, Org: a.Org, By: a.Subject, At: now, Reason: reason}
		params := map[string]any{ParamReason: reason}
		if from == StatusDispatching {
			params[ParamStopped] = stopped
		}
		b.record(now, a, "cancelled", from, b.Closure.Reason, params)
		return nil
	})
}

// requireReason cleans a withdrawal's or cancellation's reason and
// refuses a blank one: whoever stops a broadcast says why, on every path
// (API, web, anything else that calls the service).
func requireReason(what, reason string) (string, error) {
	reason, err := cleanText("reason", reason, multiLine, MaxReasonChars)
	if err != nil {
		return "", err
	}
	if Blank(reason) {
		return "", Errorf(CodeReasonRequired, "a %s needs a reason (\"reason\")", what).With("field", "reason")
	}
	return reason, nil
}

// stopProviders queues a stop for every provider of b that has not
// finished, marks them stopped with detail, and returns how many.
func (s *Service) stopProviders(tx Tx, b *Broadcast, now time.Time, detail string) (int, error) {
	n := 0
	for i := range b.Providers {
		p := &b.Providers[i]
		if p.Status.Final() {
			continue
		}
		stop := s.dispatchFor(b, p.Regions, DispatchStop)
		if _, err := enqueue(tx, now, p.Provider, msgID(b.ID, DispatchStop, p.Provider), stop); err != nil {
			return n, err
		}
		p.Status, p.Detail, p.UpdatedAt = DeliveryStopped, detail, now
		n++
	}
	return n, nil
}

// ReleaseDue releases every approved broadcast whose send time has come and
// returns how many it released. A broadcast is released in the transaction
// that moves it out of approved, so it is never released twice.
func (s *Service) ReleaseDue(ctx context.Context) (int, error) {
	return s.changeDue(ctx, "release", func(tx ReadTx) ([]string, error) { return tx.DueReleases(s.now()) },
		func(tx Tx, b *Broadcast, now time.Time) (bool, error) {
			if !b.Scheduled() || b.SendAt.After(now) {
				return false, nil // changed since we looked
			}
			if b.SendUntil != nil && !b.SendUntil.After(now) {
				return false, nil // its window closed while we were down: ExpireDue ends it
			}
			return true, s.release(tx, b, now)
		})
}

// changeDue runs fn, in a transaction of its own, on each broadcast that
// due lists from an index, and returns on how many fn made its change
// (it reports whether it did: each may have changed since the index was
// read). what names the change in errors. One that fails is passed over,
// not waited on: the others due after it are changed all the same, and
// the error names the first three that failed. A store that cannot write
// ends the round: every other would fail the same way.
func (s *Service) changeDue(ctx context.Context, what string, due func(ReadTx) ([]string, error),
	fn func(tx Tx, b *Broadcast, now time.Time) (bool, error)) (int, error) {
	var ids []string
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		ids, err = due(tx)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var failed []error
	for _, id := range ids {
		if ctx.Err() != nil {
			failed = append(failed, ctx.Err())
			break
		}
		changed := false
		_, err := s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
			var err error
			changed, err = fn(tx, b, now) // set on every run: Store.Update may run it more than once
			return err
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("%s %s: %w", what, id, err))
			if IsCode(err, CodeUnavailable) {
				break // the store's failure, not this broadcast's: the rest would fail alike
			}
			continue
		}
		if changed {
			n++
		}
	}
	if len(failed) > 3 {
		failed = append(failed[:3], fmt.Errorf("and %d more", len(failed)-3))
	}
	return n, errors.Join(failed...)
}

// NextRelease returns when the next approved broadcast is due.
func (s *Service) NextRelease(ctx context.Context) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		t, ok, err = tx.NextRelease()
		return err
	})
	return t, ok, err
}

// release moves b to dispatching and enqueues one dispatch for every
// provider whose coverage meets its scope.
func (s *Service) release(tx Tx, b *Broadcast, now time.Time) error {
	from := b.Status
	b.Providers = b.Providers[:0]
	kind := b.dispatchType()
	// A dispatch names no provider, so providers covering the same
	// regions (in a wide fan-out, nearly all) get the same bytes: encoded
	// once, not once each in the writer's transaction.
	payloads := map[string][]byte{}
	err := tx.EachCovering(b.Scope, func(p *Provider, regions []string) error {
		regions = slices.Clone(regions) // the store's: the record keeps its own
		key := strings.Join(regions, ",")
		payload, ok := payloads[key]
		if !ok {
			var err error
			if payload, err = json.Marshal(s.dispatchFor(b, regions, kind)); err != nil {
				return fmt.Errorf("encode dispatch of %s: %w", b.ID, err)
			}
			payloads[key] = payload
		}
		id, err := enqueueEncoded(tx, now, p.ID, msgID(b.ID, kind, p.ID), b.ID, kind, payload)
		if err != nil {
			return err
		}
		b.Providers = append(b.Providers, ProviderProgress{
			Provider: p.ID, Name: p.Name, Regions: regions,
			Status: DeliveryQueued, QueuedAt: now, UpdatedAt: now, MsgID: id,
		})
		return nil
	})
	if err != nil {
		return err
	}
	b.Status = StatusDispatching
	b.ReleasedAt = &now
	b.record(now, Actor{}, "released", from, fmt.Sprintf("dispatched to %d provider(s)", len(b.Providers)),
		map[string]any{ParamProviders: len(b.Providers)})
	if b.IsEmergency() {
		b.PostHoc = &PostHoc{Status: PostHocDue}
		days := s.postHocDays()
		// An emergency never waits on a calendar: without one the due
		// date is pending rather than guessed, and filled in when the
		// year is loaded (FillPendingDueDates).
		if due, err := s.Calendar.AddWorkingDays(now, days); err == nil {
			b.PostHoc.DueDate = due.Format(DateLayout)
		} else {
			b.PostHoc.DuePending = true
		}
	}
	if len(b.Providers) == 0 {
		b.Status = StatusCompleted
		b.CompletedAt = &now
		b.record(now, Actor{}, "completed", StatusDispatching, "no registered provider covers the scope",
			map[string]any{ParamNoProvider: true})
	}
	return nil
}

func msgID(broadcastID, kind, provider string) string {
	return broadcastID + "." + kind + "." + provider
}

// enqueue adds one provider's dispatch to the outbox.
func enqueue(tx Tx, now time.Time, provider, id string, d Dispatch) (msgID string, err error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode dispatch %s: %w", id, err)
	}
	return enqueueEncoded(tx, now, provider, id, d.BroadcastID, d.Type, payload)
}

// enqueueEncoded adds a dispatch already encoded (payload, its JSON). Its
// Nats-Msg-Id ends in a random nonce drawn now, in the transaction that
// stores it: a crash republishes the stored id, which JetStream drops as
// the duplicate it is, while broadcast ids that repeat (a fresh data folder
// on an old stream, a restored tocsin.db) can never make a new dispatch
// look like an old one.
func enqueueEncoded(tx Tx, now time.Time, provider, id, broadcastID, kind string, payload []byte) (msgID string, err error) {
	msgID = id + "." + nonce()
	return msgID, tx.Enqueue(OutboxMessage{Provider: provider, MsgID: msgID, BroadcastID: broadcastID, Type: kind, EnqueuedAt: now, Payload: payload})
}

// nonce is 64 random bits in hex.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// RenewMsgID gives an unpublished outbox message a fresh Nats-Msg-Id. The
// relay calls it when JetStream answers a publish as a duplicate of a
// different message: counting that as published would drop the dispatch.
func (s *Service) RenewMsgID(ctx context.Context, m OutboxMessage) (OutboxMessage, error) {
	renewed := m
	renewed.MsgID = m.MsgID + "." + nonce()
	err := s.Store.Update(ctx, func(tx Tx) error {
		if err := tx.Dequeue(m.Seq); err != nil {
			return err
		}
		renewed.Seq = 0
		if err := tx.Enqueue(renewed); err != nil {
			return err
		}
		b, err := tx.Broadcast(m.BroadcastID)
		if IsCode(err, CodeNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if p := b.progress(m.Provider); p != nil && p.MsgID == m.MsgID {
			p.MsgID = renewed.MsgID
			if err := tx.PutBroadcast(b); err != nil {
				return err
			}
			// Audited like every write of a record, so the trail's latest
			// entry about it still states what it holds.
			return tx.Audit(AuditEntry{At: s.now(), Action: AuditDispatchRenewed, By: "relay", Source: SourceFrom(ctx),
				Target: b.ID, Note: m.Provider + " " + m.MsgID + " -> " + renewed.MsgID})
		}
		return nil
	})
	if err != nil {
		return m, fmt.Errorf("renew message id %s: %w", m.MsgID, err)
	}
	s.published()
	return renewed, nil
}

// Republish queues again, under the ids they were first published with,
// the dispatches still waiting to be received that were queued after
// since. It is for a JetStream that lost messages it had acknowledged (a
// stream store that failed to write, a stream recreated empty): JetStream
// drops as duplicates those it kept, and stores those it lost. since must
// lie within JetStream's duplicate window, or a kept one would go twice.
func (s *Service) Republish(ctx context.Context, since time.Time) (int, error) {
	type key struct{ broadcast, provider string }
	var due []key
	err := s.Store.View(ctx, func(tx ReadTx) error {
		return eachBroadcast(tx, Query{Status: []Status{StatusDispatching}}, func(b *Broadcast) {
			for _, p := range b.Providers {
				if p.Status == DeliveryQueued && p.MsgID != "" && p.QueuedAt.After(since) {
					due = append(due, key{b.ID, p.Provider})
				}
			}
		})
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	n := 0
	err = s.Store.Update(ctx, func(tx Tx) error {
		n = 0
		for _, k := range due {
			b, err := tx.Broadcast(k.broadcast)
			if err != nil {
				return err
			}
			p := b.progress(k.provider)
			if p == nil || p.Status != DeliveryQueued || b.Status != StatusDispatching {
				continue
			}
			d := s.dispatchFor(b, p.Regions, b.dispatchType())
			m, err := NewOutboxMessage(p.Provider, p.MsgID, s.now(), d)
			if err != nil {
				return err
			}
			if err := tx.Enqueue(m); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("republish: %w", err)
	}
	if n > 0 {
		s.published()
	}
	return n, nil
}

// dispatchType is how b travels when released: a correction as an update.
func (b *Broadcast) dispatchType() string {
	if b.References != "" {
		return DispatchUpdate
	}
	return DispatchBroadcast
}

// dispatchFor builds the message one provider receives about b.
func (s *Service) dispatchFor(b *Broadcast, regions []string, kind string) Dispatch {
	d := Dispatch{
		BroadcastID: b.ID, Type: kind,
		SenderCode: b.SenderCode, Agency: b.Agency, Content: b.Content,
		Regions: regions, SendAt: b.SendAt, SendUntil: b.SendUntil,
		Exercise: b.Exercise, Charge: "free",
	}
	if e := b.Emergency; e != nil {
		d.Emergency = &DispatchEmergency{Type: string(e.Type), Event: e.Event, Level: string(e.Level)}
	}
	switch kind {
	case DispatchStop:
		d.References = b.ID
	case DispatchUpdate:
		d.References = b.References
	}
	return d
}

// FilePostHoc records the department's after-the-fact report on an
// emergency broadcast. Nothing a department reported is ever overwritten:
// a report filed while an earlier one waits for review is an amendment,
// kept with the earlier versions (PostHoc.Versions, each with its time and
// author); Report is the latest, the one the regulator reviews. Once
// reviewed, the report is closed.
func (s *Service) FilePostHoc(ctx context.Context, a Actor, id, report string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if a.Role != RoleDepartment || a.Org != b.Department {
			return Errorf(CodeForbidden, "only the filing department may report on broadcast %s", b.ID)
		}
		report, err := cleanText("report", report, multiLine, MaxReportChars)
		switch {
		case b.PostHoc == nil:
			return Errorf(CodeConflict, "broadcast %s owes no post-hoc report (only released emergencies do)", b.ID)
		case b.PostHoc.Status == PostHocReviewed:
			return Errorf(CodeConflict, "the post-hoc report on %s was already reviewed", b.ID)
		case err != nil:
			return err
		case Blank(report):
			return invalid("report", "report is required")
		}
		p := b.PostHoc
		if len(p.Versions) == 0 && p.Report != "" && p.FiledAt != nil {
			// A report filed before versions were kept is version 1.
			p.Versions = append(p.Versions, PostHocVersion{Report: p.Report, FiledAt: *p.FiledAt, FiledBy: p.FiledBy})
		}
		p.Versions = append(p.Versions, PostHocVersion{Report: report, FiledAt: now, FiledBy: a.Subject})
		action, note := "post_hoc_filed", ""
		if len(p.Versions) > 1 {
			action, note = "post_hoc_amended", fmt.Sprintf("amendment %d", len(p.Versions)-1)
		}
		p.Status, p.Report = PostHocFiled, report
		p.FiledAt, p.FiledBy = &now, a.Subject
		b.record(now, a, action, b.Status, note, map[string]any{ParamVersion: len(p.Versions)})
		return nil
	})
}

// ReviewPostHoc records the regulator's reading of a post-hoc report; a
// not_emergency verdict stays on the department's record.
func (s *Service) ReviewPostHoc(ctx context.Context, a Actor, id string, verdict PostHocVerdict, note string) (*Broadcast, error) {
	return s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
		if err := s.supervise(a, b); err != nil {
			return err
		}
		note, err := cleanText("note", note, multiLine, MaxNoteChars)
		switch {
		case verdict != PostHocAccepted && verdict != PostHocNotEmergency:
			return invalid("verdict", "verdict must be %q or %q", PostHocAccepted, PostHocNotEmergency)
		case err != nil:
			return err
		case verdict == PostHocNotEmergency && Blank(note):
			return Errorf(CodeReasonRequired, "flagging a filing as not an emergency needs a note saying why").With("field", "note")
		case b.PostHoc == nil || b.PostHoc.Status != PostHocFiled:
			return Errorf(CodeConflict, "broadcast %s has no post-hoc report waiting for review", b.ID)
		}
		b.PostHoc.Status, b.PostHoc.Verdict, b.PostHoc.Note = PostHocReviewed, verdict, note
		b.PostHoc.ReviewedAt, b.PostHoc.ReviewedBy = &now, a.Org
		b.record(now, a, "post_hoc_reviewed", b.Status, string(verdict), map[string]any{ParamVerdict: string(verdict)})
		return nil
	})
}

// Overdue reports whether b's post-hoc report is past its due date.
func (p *PostHoc) Overdue(now time.Time) bool {
	if p == nil || p.Status != PostHocDue || p.DueDate == "" {
		return false
	}
	due, err := time.ParseInLocation(DateLayout, p.DueDate, Shanghai)
	return err == nil && DateOf(now).After(due)
}
