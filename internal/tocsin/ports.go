package tocsin

import (
	"context"
	"time"
)

// Store keeps Tocsin's state durably.
//
// Update runs fn in a read-write transaction and returns only once the
// transaction is on stable storage; an error from fn rolls back everything fn
// did. Implementations may commit several concurrent Updates together (group
// commit), so fn must touch nothing but tx and may be run more than once.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(ReadTx) error) error
}

// ReadTx reads a consistent snapshot. Lookups of a missing item return an
// *Error with CodeNotFound.
type ReadTx interface {
	Broadcast(id string) (*Broadcast, error)
	Broadcasts(q Query) (Page, error)
	// DueReleases returns the IDs of approved broadcasts whose send time is
	// at or before t, oldest first.
	DueReleases(t time.Time) ([]string, error)
	// NextRelease returns the earliest send time of an approved broadcast.
	NextRelease() (time.Time, bool, error)
	// WindowsClosedBy returns the IDs of broadcasts whose send window
	// (Broadcast.WindowCloses) closes at or before t, soonest first.
	WindowsClosedBy(t time.Time) ([]string, error)
	// AwaitedBefore returns the dispatches still awaited (Broadcast.Awaited)
	// that were queued before t, oldest first.
	AwaitedBefore(t time.Time) ([]Awaited, error)
	Idempotency(org, key string) (IdempotencyRecord, bool, error)

	Organisation(id string) (*Organisation, error)
	Organisations() ([]*Organisation, error)
	Account(username string) (*Account, error)
	// Credential returns a stored session or service token by id;
	// Credentials those of one organisation, or of all with org "".
	Credential(id string) (*Credential, error)
	Credentials(org string) ([]*Credential, error)
	Provider(id string) (*Provider, error)
	Providers() ([]*Provider, error)
	// EachCovering calls fn with every provider covering part of scope
	// and the regions of scope it covers (Provider.Coverage, by the
	// store's Regions, those it indexes provinces by), in the order of
	// Providers, stopping at fn's first error. p and regions are the
	// store's own, which it may remember for the next release of the same
	// scope: fn must neither change nor keep them (Providers returns
	// copies). For the release of every broadcast.
	EachCovering(scope []string, fn func(p *Provider, regions []string) error) error

	// Timeline returns the audit entries about target, oldest first.
	Timeline(target string) ([]AuditEntry, error)

	// Outbox returns up to limit messages waiting to be published, in order.
	Outbox(limit int) ([]OutboxMessage, error)
	// OutboxExcept is Outbox leaving out the messages of the providers
	// in held (disabled providers, whose dispatches wait) and those whose
	// Seq is in inFlight (published, their Dequeue not yet committed),
	// without decoding them.
	OutboxExcept(limit int, held map[string]bool, inFlight map[uint64]bool) ([]OutboxMessage, error)
	OutboxLen() (int, error)

	InboxReadTx
}

// Tx is a read-write transaction.
type Tx interface {
	ReadTx
	// NewBroadcastID allocates the next broadcast ID.
	NewBroadcastID() (string, error)
	// PutBroadcast writes b and keeps every index over it current. b's
	// History is not stored with it: a broadcast read back has the events
	// its audit entries with Event set hold (and, within this
	// transaction, the History it was last written with), so every event
	// must be audited, as auditHistory does.
	PutBroadcast(b *Broadcast) error
	PutIdempotency(org, key string, rec IdempotencyRecord) error
	PutOrganisation(o *Organisation) error
	PutAccount(a *Account) error
	PutProvider(p *Provider) error
	PutCredential(c *Credential) error
	// DeleteCredential removes a credential; a missing one is no error.
	DeleteCredential(id string) error
	// Enqueue adds a message to the outbox, assigning its Seq.
	Enqueue(m OutboxMessage) error
	// Dequeue removes published messages from the outbox.
	Dequeue(seqs ...uint64) error
	// Audit appends an entry to the hash-chained audit trail, filling in
	// Seq, Prev, Hash and, for a target written in this transaction,
	// StateHash.
	Audit(e AuditEntry) error
	// DeleteBroadcast removes a broadcast and its index entries (purge).
	DeleteBroadcast(id string) error

	InboxTx
}

// Calendar answers working-day questions on the official PRC calendar.
// Dates are calendar dates in Asia/Shanghai. A date in a year with no loaded
// calendar yields an error with a MissingYear() int method.
type Calendar interface {
	EarliestSendDate(filed time.Time) (time.Time, error)
	AddWorkingDays(day time.Time, n int) (time.Time, error)
	WorkingDaysBetween(from, to time.Time) (int, error)
}

// CalendarDay is one date of the working-day calendar as Tocsin shows it:
// whether it is a working day and why (the calendar's reason: "workday",
// "weekend", "holiday" or "makeup_workday"), and the holiday's Chinese name
// for a holiday or the make-up working day that compensates one.
type CalendarDay struct {
	Date    string `json:"date"` // DateLayout
	Working bool   `json:"working"`
	Reason  string `json:"reason"`
	Holiday string `json:"holiday,omitempty"`
}

// Regions knows the GB/T 2260 administrative divisions.
type Regions interface {
	// Validate returns an error for a code that is not a known division.
	Validate(code string) error
	// Province returns the province-level code containing code.
	Province(code string) string
	// Contains reports whether inner lies within outer (or is outer).
	Contains(outer, inner string) bool
	Name(code string) string
}

// Clock tells the time. The demo's clock can start in the past or future.
type Clock interface {
	Now() time.Time
}

// SystemClock is the machine's clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// OffsetClock is a clock running at normal speed from a chosen start.
type OffsetClock struct{ Offset time.Duration }

// StartingAt returns a clock that reads start now and runs on from there.
func StartingAt(start time.Time) OffsetClock { return OffsetClock{Offset: time.Until(start)} }

func (c OffsetClock) Now() time.Time { return time.Now().Add(c.Offset) }

// Shanghai is China Standard Time: UTC+8 without daylight saving since 1991.
// Filing dates and working days are reckoned in it.
var Shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// DateOf returns midnight in Shanghai of t's Shanghai calendar date.
func DateOf(t time.Time) time.Time {
	y, m, d := t.In(Shanghai).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, Shanghai)
}

// DateLayout is how dates are written: YYYY-MM-DD.
const DateLayout = "2006-01-02"
