package tocsin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Department notifications (Article 17: the department is informed in a
// timely manner, with the reasons). Every organisation has an inbox; what
// happens to its broadcasts is written there in the same transaction as
// the change that causes it, so a notification is never lost or doubled.
// An organisation may register a webhook: each notification is then also
// queued, in that transaction, for delivery to it (the deliverer lives in
// package webhook).

// NoticeKind says what a notification is about.
type NoticeKind string

const (
	NoticeApproved        NoticeKind = "approved"
	NoticeRejected        NoticeKind = "rejected"
	NoticeWithdrawn       NoticeKind = "withdrawn" // by someone else: a correction superseded it
	NoticeCancelled       NoticeKind = "cancelled"
	NoticeDispatchFailed  NoticeKind = "dispatch_failed"
	NoticeLate            NoticeKind = "late"
	NoticePostHocDue      NoticeKind = "post_hoc_due"
	NoticePostHocOverdue  NoticeKind = "post_hoc_overdue"
	NoticePostHocReviewed NoticeKind = "post_hoc_reviewed"
)

// NoticeKinds lists every kind, for catalogs and documentation.
var NoticeKinds = []NoticeKind{
	NoticeApproved, NoticeRejected, NoticeWithdrawn, NoticeCancelled, NoticeDispatchFailed,
	NoticeLate, NoticePostHocDue, NoticePostHocOverdue, NoticePostHocReviewed,
}

// Notice is what happened, as the department's inbox shows it and its
// webhook receives it (the JSON body of a webhook delivery).
type Notice struct {
	ID          string     `json:"id"`
	Org         string     `json:"org"`
	Kind        NoticeKind `json:"kind"`
	At          time.Time  `json:"at"`
	BroadcastID string     `json:"broadcast_id"`
	// Title is the broadcast's internal title: the department's own.
	Title string `json:"title,omitempty"`
	// References is, for a correction, the broadcast it corrects.
	References string `json:"references,omitempty"`
	Emergency  bool   `json:"emergency"`
	Exercise   bool   `json:"exercise"`
	// By is the organisation that acted (a regulator), if any.
	By         string         `json:"by,omitempty"`
	ReasonCode ReasonCode     `json:"reason_code,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Provider   string         `json:"provider,omitempty"`
	Detail     string         `json:"detail,omitempty"`
	DueDate    string         `json:"due_date,omitempty"`
	Verdict    PostHocVerdict `json:"verdict,omitempty"`
	Note       string         `json:"note,omitempty"`
}

// Notification is a notice in an inbox: whether it was read, and how its
// webhook delivery stands.
type Notification struct {
	Notice
	Read    bool             `json:"read"`
	ReadAt  *time.Time       `json:"read_at,omitempty"`
	Webhook *WebhookDelivery `json:"webhook,omitempty"`
}

// WebhookState is how a notification's webhook delivery stands.
type WebhookState string

const (
	WebhookPending   WebhookState = "pending"   // not tried yet
	WebhookRetrying  WebhookState = "retrying"  // tried, failed, will try again
	WebhookDelivered WebhookState = "delivered" // the receiver answered 2xx
	WebhookDropped   WebhookState = "dropped"   // the webhook was removed first
)

// WebhookDelivery is the visible status of one notification's delivery.
type WebhookDelivery struct {
	State         WebhookState `json:"state"`
	Attempts      int          `json:"attempts"`
	LastAttemptAt *time.Time   `json:"last_attempt_at,omitempty"`
	// LastStatus is the receiver's HTTP status on the last attempt (0 if
	// it did not answer); LastError says what went wrong.
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// Webhook is an organisation's registered receiver. Secret signs every
// delivery; it is shown once, when the webhook is registered.
type Webhook struct {
	Org       string    `json:"org"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// WebhookJob is one queued delivery: the store keeps them per
// organisation in order, and the deliverer works on each organisation's
// oldest.
type WebhookJob struct {
	Seq            uint64    `json:"seq"`
	Org            string    `json:"org"`
	NotificationID string    `json:"notification_id"`
	NextAttempt    time.Time `json:"next_attempt"`
}

// InboxReadTx reads inboxes and webhooks. Lookups of a missing item
// return an *Error with CodeNotFound.
type InboxReadTx interface {
	// Notifications returns up to limit of org's notifications, newest
	// first, older than the one with id before ("" for the newest), and
	// the cursor of the next page ("" at the end).
	Notifications(org string, limit int, before string) ([]Notification, string, error)
	Notification(org, id string) (*Notification, error)
	Unread(org string) (int, error)
	Webhook(org string) (*Webhook, error)
	// WebhookHeads returns every organisation's oldest queued delivery.
	WebhookHeads() ([]WebhookJob, error)
	// WebhookQueued counts org's queued deliveries.
	WebhookQueued(org string) (int, error)
}

// InboxTx writes inboxes and webhooks.
type InboxTx interface {
	// AddNotification stores n in its organisation's inbox, assigning its
	// ID, unless a notification with the same key is there already; it
	// reports whether it added one.
	AddNotification(n *Notification, key string) (bool, error)
	// PutNotification rewrites a stored notification (read, delivery).
	PutNotification(n *Notification) error
	PutWebhook(w *Webhook) error
	DeleteWebhook(org string) error
	// PutWebhookJob queues j, assigning its Seq when zero, or updates it.
	PutWebhookJob(j *WebhookJob) error
	DeleteWebhookJob(org string, seq uint64) error
}

// Limits of the inbox and webhooks.
const (
	MaxWebhookURLChars = 2000
	DefaultInboxPage   = 50
)

// AuditWebhook is the audit action of a webhook registered or removed.
const AuditWebhook = "webhook_saved"

// KeyedNotice is a notice and the key that identifies its fact, so that
// the same fact is told once.
type KeyedNotice struct {
	Key    string
	Notice Notice
}

// Notices returns every fact about b its department should be told, each
// with a key that is the same whenever the fact is: the store keeps one
// notification per key, so calling this after each change tells each fact
// once. It reads b's state, not its history, so any path that changes a
// broadcast (a review, a receipt, a flag) is covered.
func Notices(b *Broadcast, now time.Time) []KeyedNotice {
	base := Notice{
		Org: b.Department, BroadcastID: b.ID, Title: b.Title, References: b.References,
		Emergency: b.IsEmergency(), Exercise: b.Exercise,
	}
	var out []KeyedNotice
	add := func(key string, at time.Time, fill func(n *Notice)) {
		n := base
		n.At = at
		fill(&n)
		out = append(out, KeyedNotice{Key: b.ID + "/" + key, Notice: n})
	}
	if r := b.Review; r != nil {
		switch r.Decision {
		case DecisionApproved:
			add("approved", r.At, func(n *Notice) { n.Kind, n.By = NoticeApproved, r.Regulator })
		case DecisionRejected:
			add("rejected", r.At, func(n *Notice) {
				n.Kind, n.By, n.ReasonCode, n.Reason = NoticeRejected, r.Regulator, r.ReasonCode, r.Reason
			})
		}
	}
	if c := b.Closure; c != nil && c.Org != b.Department {
		kind := NoticeCancelled
		if c.Action == StatusWithdrawn {
			kind = NoticeWithdrawn
		}
		add(string(c.Action), c.At, func(n *Notice) { n.Kind, n.By, n.Reason = kind, c.Org, c.Reason })
	}
	for _, p := range b.Providers {
		attempt := fmt.Sprintf("%s/%d", p.Provider, p.Attempts)
		if p.Status == DeliveryFailed {
			add("failed/"+attempt, p.UpdatedAt, func(n *Notice) {
				n.Kind, n.Provider, n.Detail = NoticeDispatchFailed, p.Provider, p.Detail
			})
		}
		if p.Late {
			add("late/"+attempt, now, func(n *Notice) {
				n.Kind, n.Provider = NoticeLate, p.Provider
				n.Detail = fmt.Sprintf("%s has not received the dispatch queued at %s", p.Provider, p.QueuedAt.In(Shanghai).Format(time.RFC3339))
			})
		}
	}
	if p := b.PostHoc; p != nil {
		if p.DueDate != "" {
			at := now
			if b.ReleasedAt != nil {
				at = *b.ReleasedAt
			}
			add("post_hoc_due", at, func(n *Notice) { n.Kind, n.DueDate = NoticePostHocDue, p.DueDate })
		}
		if p.Overdue(now) {
			add("post_hoc_overdue", now, func(n *Notice) { n.Kind, n.DueDate = NoticePostHocOverdue, p.DueDate })
		}
		if p.Status == PostHocReviewed {
			at := now
			if p.ReviewedAt != nil {
				at = *p.ReviewedAt
			}
			add("post_hoc_reviewed", at, func(n *Notice) {
				n.Kind, n.By, n.Verdict, n.Note = NoticePostHocReviewed, p.ReviewedBy, p.Verdict, p.Note
			})
		}
	}
	return out
}

// notifyDepartment writes into b's department's inbox what it has not yet
// been told about b as of now, and queues each for its webhook. It runs in
// the transaction that changed b (auditHistory calls it), so the notice
// is committed with its cause or not at all.
func notifyDepartment(tx Tx, b *Broadcast, now time.Time) (added int, err error) {
	if b.Department == "" {
		return 0, nil
	}
	notices := Notices(b, now)
	if len(notices) == 0 {
		return 0, nil
	}
	hooked, err := hasWebhook(tx, b.Department)
	if err != nil {
		return 0, fmt.Errorf("notify %s about %s: %w", b.Department, b.ID, err)
	}
	for _, kn := range notices {
		ok, err := addNotification(tx, &Notification{Notice: kn.Notice}, kn.Key, hooked, now)
		if err != nil {
			return added, fmt.Errorf("notify %s about %s: %w", b.Department, b.ID, err)
		}
		if ok {
			added++
		}
	}
	return added, nil
}

// lastChange is when b last changed: its newest history entry or
// provider update, the time a notice with no time of its own carries.
func lastChange(b *Broadcast) time.Time {
	var t time.Time
	if n := len(b.History); n > 0 {
		t = b.History[n-1].At
	}
	for _, p := range b.Providers {
		if p.UpdatedAt.After(t) {
			t = p.UpdatedAt
		}
	}
	if t.IsZero() {
		t = b.FiledAt
	}
	return t
}

// InboxPage is one page of an inbox, with the organisation's unread count.
type InboxPage struct {
	Notifications []Notification `json:"notifications"`
	Unread        int            `json:"unread"`
	NextCursor    string         `json:"next_cursor,omitempty"`
}

// Inbox returns a page of the actor's organisation's notifications,
// newest first.
func (s *Service) Inbox(ctx context.Context, a Actor, limit int, cursor string) (InboxPage, error) {
	if a.Org == "" {
		return InboxPage{}, Errorf(CodeForbidden, "only an organisation has an inbox")
	}
	if limit <= 0 {
		limit = DefaultInboxPage
	}
	limit = min(limit, MaxPageSize)
	var p InboxPage
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		if p.Notifications, p.NextCursor, err = tx.Notifications(a.Org, limit, cursor); err != nil {
			return err
		}
		p.Unread, err = tx.Unread(a.Org)
		return err
	})
	if p.Notifications == nil {
		p.Notifications = []Notification{}
	}
	return p, err
}

// Unread returns how many of the actor's organisation's notifications are
// unread.
func (s *Service) Unread(ctx context.Context, a Actor) (int, error) {
	if a.Org == "" {
		return 0, nil
	}
	n := 0
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		n, err = tx.Unread(a.Org)
		return err
	})
	return n, err
}

// MarkRead marks one of the actor's organisation's notifications read. A
// notification of another organisation is not found: an inbox is private.
func (s *Service) MarkRead(ctx context.Context, a Actor, id string) (*Notification, error) {
	var out *Notification
	err := s.Store.Update(ctx, func(tx Tx) error {
		n, err := tx.Notification(a.Org, id)
		if err != nil {
			return err
		}
		if !n.Read {
			now := s.now()
			n.Read, n.ReadAt = true, &now
			if err := tx.PutNotification(n); err != nil {
				return err
			}
		}
		out = n
		return nil
	})
	return out, err
}

// MarkAllRead marks every unread notification of the actor's organisation
// read and returns how many it marked.
func (s *Service) MarkAllRead(ctx context.Context, a Actor) (int, error) {
	marked := 0
	err := s.Store.Update(ctx, func(tx Tx) error {
		marked = 0
		now := s.now()
		cursor := ""
		for {
			unread, err := tx.Unread(a.Org)
			if err != nil || unread == 0 {
				return err
			}
			page, next, err := tx.Notifications(a.Org, MaxPageSize, cursor)
			if err != nil {
				return err
			}
			for i := range page {
				if n := &page[i]; !n.Read {
					n.Read, n.ReadAt = true, &now
					if err := tx.PutNotification(n); err != nil {
						return err
					}
					marked++
				}
			}
			if cursor = next; cursor == "" {
				return nil
			}
		}
	})
	return marked, err
}

// CheckWebhookURL accepts an absolute http or https URL with a host and no
// credentials, and returns it as it will be called. Which hosts are
// acceptable (internal addresses, a proxy) is the operator's to decide: see
// the README on webhooks.
func CheckWebhookURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalid("url", "url is required (https://...)")
	}
	if len(raw) > MaxWebhookURLChars {
		return "", invalid("url", "url is longer than %d characters", MaxWebhookURLChars)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", invalid("url", "url is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", invalid("url", "url must start with https:// (or http://)")
	case u.Host == "" || u.Hostname() == "":
		return "", invalid("url", "url names no host")
	case u.User != nil:
		return "", invalid("url", "url may not carry a user name or password; the signature authenticates Tocsin")
	case u.Fragment != "":
		return "", invalid("url", "url may not carry a #fragment")
	}
	return u.String(), nil
}

// canManageWebhook: the admin, or the organisation itself.
func canManageWebhook(a Actor, org string) error {
	if a.Role == RoleAdmin || (a.Org != "" && a.Org == org) {
		return nil
	}
	return Errorf(CodeForbidden, "only the admin or organisation %s itself may manage its webhook", org)
}

// SetWebhook registers (or replaces) org's webhook and returns it with a
// new secret: the only time the secret is shown. Deliveries still queued
// go to the new URL, signed with the new secret.
func (s *Service) SetWebhook(ctx context.Context, a Actor, org, rawURL string) (*Webhook, error) {
	if err := canManageWebhook(a, org); err != nil {
		return nil, err
	}
	u, err := CheckWebhookURL(rawURL)
	if err != nil {
		return nil, err
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:]) // crypto/rand.Read never fails
	w := &Webhook{Org: org, URL: u, Secret: "whsec_" + hex.EncodeToString(secret[:]), CreatedAt: s.now(), CreatedBy: a.Org + "/" + a.Subject}
	err = s.Store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Organisation(org); err != nil {
			return err
		}
		if err := tx.PutWebhook(w); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: w.CreatedAt, Action: AuditWebhook, Org: a.Org, By: a.Subject, Source: SourceFrom(ctx),
			Target: org, Note: "webhook " + u})
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// WebhookStatus is an organisation's webhook as it may be shown: never
// its secret.
type WebhookStatus struct {
	Org       string    `json:"org"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// Queued counts deliveries waiting (the oldest being retried first).
	Queued int `json:"queued"`
}

// GetWebhook returns org's webhook without its secret.
func (s *Service) GetWebhook(ctx context.Context, a Actor, org string) (WebhookStatus, error) {
	if err := canManageWebhook(a, org); err != nil {
		return WebhookStatus{}, err
	}
	var st WebhookStatus
	err := s.Store.View(ctx, func(tx ReadTx) error {
		w, err := tx.Webhook(org)
		if err != nil {
			return err
		}
		st = WebhookStatus{Org: w.Org, URL: w.URL, CreatedAt: w.CreatedAt, CreatedBy: w.CreatedBy}
		st.Queued, err = tx.WebhookQueued(org)
		return err
	})
	return st, err
}

// RemoveWebhook removes org's webhook; its queued deliveries are dropped
// (the notifications stay in the inbox, marked dropped).
func (s *Service) RemoveWebhook(ctx context.Context, a Actor, org string) error {
	if err := canManageWebhook(a, org); err != nil {
		return err
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Webhook(org); err != nil {
			return err
		}
		for {
			heads, err := tx.WebhookHeads()
			if err != nil {
				return err
			}
			var job *WebhookJob
			for i := range heads {
				if heads[i].Org == org {
					job = &heads[i]
				}
			}
			if job == nil {
				break
			}
			if err := tx.DeleteWebhookJob(org, job.Seq); err != nil {
				return err
			}
			if n, err := tx.Notification(org, job.NotificationID); err == nil && n.Webhook != nil {
				n.Webhook.State, n.Webhook.NextAttemptAt = WebhookDropped, nil
				if err := tx.PutNotification(n); err != nil {
					return err
				}
			} else if err != nil && !IsCode(err, CodeNotFound) {
				return err
			}
		}
		if err := tx.DeleteWebhook(org); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditWebhook, Org: a.Org, By: a.Subject, Source: SourceFrom(ctx),
			Target: org, Note: "webhook removed"})
	})
}

// WebhookAttempt is one delivery to make now: where, with what secret,
// and the body to sign and send.
type WebhookAttempt struct {
	Job    WebhookJob
	URL    string
	Secret string
	Body   []byte
	// Attempts is how many were made before this one.
	Attempts int
}

// DueWebhooks returns, for each organisation with deliveries queued, its
// oldest if it is due: one at a time per organisation keeps them in order
// and lets no receiver hold up another's. Jobs whose webhook or
// notification has gone are dropped here.
func (s *Service) DueWebhooks(ctx context.Context) ([]WebhookAttempt, error) {
	now := s.now()
	var out []WebhookAttempt
	var orphans []WebhookJob
	err := s.Store.View(ctx, func(tx ReadTx) error {
		out, orphans = nil, nil
		heads, err := tx.WebhookHeads()
		if err != nil {
			return err
		}
		for _, j := range heads {
			if j.NextAttempt.After(now) {
				continue
			}
			w, err := tx.Webhook(j.Org)
			if IsCode(err, CodeNotFound) {
				orphans = append(orphans, j)
				continue
			} else if err != nil {
				return err
			}
			n, err := tx.Notification(j.Org, j.NotificationID)
			if IsCode(err, CodeNotFound) {
				orphans = append(orphans, j)
				continue
			} else if err != nil {
				return err
			}
			body, err := json.Marshal(n.Notice)
			if err != nil {
				return fmt.Errorf("encode notification %s: %w", n.ID, err)
			}
			attempts := 0
			if n.Webhook != nil {
				attempts = n.Webhook.Attempts
			}
			out = append(out, WebhookAttempt{Job: j, URL: w.URL, Secret: w.Secret, Body: body, Attempts: attempts})
		}
		return nil
	})
	if err != nil || len(orphans) == 0 {
		return out, err
	}
	err = s.Store.Update(ctx, func(tx Tx) error {
		for _, j := range orphans {
			if err := tx.DeleteWebhookJob(j.Org, j.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// WebhookResult is what one attempt came to.
type WebhookResult struct {
	Status int    // the receiver's HTTP status, 0 if none
	Err    string // why it failed; empty with a 2xx
	// Retry is when to try again after a failure.
	Retry time.Time
}

// Delivered reports whether the receiver took the delivery.
func (r WebhookResult) Delivered() bool { return r.Err == "" && r.Status >= 200 && r.Status < 300 }

// RecordWebhookAttempt records an attempt on the notification: a
// delivered one leaves the queue, a failed one waits until r.Retry.
func (s *Service) RecordWebhookAttempt(ctx context.Context, job WebhookJob, r WebhookResult) error {
	return s.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		n, err := tx.Notification(job.Org, job.NotificationID)
		if IsCode(err, CodeNotFound) {
			return tx.DeleteWebhookJob(job.Org, job.Seq)
		} else if err != nil {
			return err
		}
		d := n.Webhook
		if d == nil {
			d = &WebhookDelivery{}
			n.Webhook = d
		}
		d.Attempts++
		d.LastAttemptAt, d.LastStatus, d.LastError = &now, r.Status, truncate(r.Err, MaxDetailChars)
		if r.Delivered() {
			d.State, d.DeliveredAt, d.NextAttemptAt = WebhookDelivered, &now, nil
			if err := tx.DeleteWebhookJob(job.Org, job.Seq); err != nil {
				return err
			}
		} else {
			retry := r.Retry.In(Shanghai)
			d.State, d.NextAttemptAt = WebhookRetrying, &retry
			job.NextAttempt = retry
			if err := tx.PutWebhookJob(&job); err != nil {
				return err
			}
		}
		return tx.PutNotification(n)
	})
}

// NotifyOverdue tells each department whose emergency's post-hoc report
// is past due, once per broadcast, and returns how many it told now.
func (s *Service) NotifyOverdue(ctx context.Context) (int, error) {
	var ids []string
	now := s.now()
	err := s.Store.View(ctx, func(tx ReadTx) error {
		ids = ids[:0]
		return eachBroadcast(tx, Query{PostHoc: PostHocFilterOverdue, Now: now}, func(b *Broadcast) {
			ids = append(ids, b.ID)
		})
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	told := 0
	err = s.Store.Update(ctx, func(tx Tx) error {
		told = 0
		for _, id := range ids {
			b, err := tx.Broadcast(id)
			if IsCode(err, CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !b.PostHoc.Overdue(now) {
				continue
			}
			n, err := notifyDepartment(tx, b, now)
			if err != nil {
				return err
			}
			told += n
		}
		return nil
	})
	return told, err
}

// hasWebhook says whether org has a webhook its notifications go to.
func hasWebhook(tx Tx, org string) (bool, error) {
	_, err := tx.Webhook(org)
	if IsCode(err, CodeNotFound) {
		return false, nil
	}
	return err == nil, err
}

// addNotification adds one notification unless its key is known and, if
// its organisation has a webhook (hooked), queues it.
func addNotification(tx Tx, n *Notification, key string, hooked bool, now time.Time) (bool, error) {
	if hooked {
		n.Webhook = &WebhookDelivery{State: WebhookPending, NextAttemptAt: &now}
	}
	added, err := tx.AddNotification(n, key)
	if err != nil || !added || !hooked {
		return added, err
	}
	return true, tx.PutWebhookJob(&WebhookJob{Org: n.Org, NotificationID: n.ID, NextAttempt: now})
}
