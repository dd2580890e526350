package auth

import (
	"context"
	"errors"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// HashMemory is what one Argon2id check with Tocsin's parameters
// allocates (19 MiB).
const HashMemory = argonMemory << 10

// defaultHashBudget is the memory password checks may use together when
// no GOMEMLIMIT says otherwise.
const defaultHashBudget = 256 << 20

// ErrBusy is returned by [PasswordGate] when no hashing slot came free
// within its wait: the caller answers "try again shortly" (429) rather
// than queueing without bound.
var ErrBusy = errors.New("auth: too many password checks in progress")

// HashSlots is how many Argon2id hashes may run at once: twice the
// processors (more only queue for CPU), and no more than fit in budget
// bytes. A budget of 0 is half of GOMEMLIMIT if one is set, else 256 MiB.
// It is at least 1.
func HashSlots(budget int64) int {
	if budget <= 0 {
		budget = defaultHashBudget
		if limit := debug.SetMemoryLimit(-1); limit > 0 && limit != math.MaxInt64 {
			budget = limit / 2
		}
	}
	return max(1, min(runtime.GOMAXPROCS(0)*2, int(budget/HashMemory)))
}

// PasswordGate runs password hashing under a concurrency bound, so that a
// burst of logins cannot take the server's memory (each check allocates
// HashMemory). A check waits at most Wait for a slot and then fails with
// [ErrBusy]. It is safe for concurrent use.
type PasswordGate struct {
	slots chan struct{}
	wait  time.Duration
	// dummy is a real hash of a password nobody has: checking an unknown
	// username against it costs what a known one costs, under the same
	// bound, so neither time nor queueing tells which usernames exist.
	dummy string

	inFlight, peak, runs atomic.Int64
}

// NewPasswordGate returns a gate with slots hashing slots (HashSlots(0) if
// slots < 1) and a queue wait (2 seconds if wait <= 0).
func NewPasswordGate(slots int, wait time.Duration) (*PasswordGate, error) {
	if slots < 1 {
		slots = HashSlots(0)
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	dummy, err := HashPassword("tocsin: a password nobody has")
	if err != nil {
		return nil, err
	}
	return &PasswordGate{slots: make(chan struct{}, slots), wait: wait, dummy: dummy}, nil
}

// Slots is the gate's bound.
func (g *PasswordGate) Slots() int { return cap(g.slots) }

// Peak is the most hashes that have run at once through the gate.
func (g *PasswordGate) Peak() int { return int(g.peak.Load()) }

// Runs is how many hashes the gate has run.
func (g *PasswordGate) Runs() int { return int(g.runs.Load()) }

// run runs fn in a slot.
func (g *PasswordGate) run(ctx context.Context, fn func()) error {
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.slots }()
	g.runs.Add(1)
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	fn()
	return nil
}

// Check reports whether password matches encoded, as [VerifyPassword]
// does, in a slot. An empty encoded (an unknown username) is checked
// against the gate's dummy hash and never matches.
func (g *PasswordGate) Check(ctx context.Context, encoded, password string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = g.dummy
	}
	var ok bool
	var verr error
	if err := g.run(ctx, func() { ok, verr = VerifyPassword(encoded, password) }); err != nil {
		return false, err
	}
	return ok && known, verr
}

// Hash hashes a new password, as [HashPassword] does, in a slot.
func (g *PasswordGate) Hash(ctx context.Context, password string) (string, error) {
	var hash string
	var herr error
	if err := g.run(ctx, func() { hash, herr = HashPassword(password) }); err != nil {
		return "", err
	}
	return hash, herr
}
