package boltstore

// Store failures: a full disk, an exhausted quota, an I/O error or a
// read-only file system make bbolt's commit fail. Callers then get an
// unavailable error that says nothing was saved; Writable reports the
// condition for readiness, and a probe finds out by itself when commits
// work again, so no restart is needed.
//
// Why the in-memory state can be trusted after a failed commit (bbolt
// v1.5.0, tx.Commit): bbolt copies on write, so a commit writes its pages
// only to free pages and then, last, one meta page that switches to them.
// A failure while growing the file or writing or syncing the data pages
// happens before the meta page is written: bbolt rolls back, rebuilds its
// freelist from the file, and the previous meta still points at pages the
// commit never touched. Whatever the kernel did with the failed pages
// (after a failed fsync it may drop them or mark them clean: "fsyncgate")
// concerns free pages only, which the next commit rewrites and syncs.
//
// The one case that needs care is a failure of the meta page's own fsync.
// The meta page has then reached the page cache, which bbolt's mmap reads:
// the commit is visible, and whether it is on disk is unknown, and may
// change under us if the kernel evicts the page. Reopening the file would
// read the same page cache, so it proves nothing. What settles it is one
// more commit: it writes the other meta slot, pointing at a tree whose
// data pages were all synced, and once its fsync succeeds the earlier
// commit is durable whatever happened to its meta page. So after such a
// failure the writer commits an empty transaction (a seal) before it does
// anything else, answers the batch with the seal's outcome, and refuses
// new work until a seal succeeds.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Probe backoff: the first retry soon after a failure, then at most every
// probeMax, so readiness turns green within probeMax of the disk recovering.
const (
	probeMin     = time.Second
	probeMax     = 5 * time.Second
	probeTimeout = 10 * time.Second // queueing bound for one probe write
)

// minFreeBytes is the free space a full file system must have again before
// the store counts as writable. A tiny probe commit can succeed on a full
// disk by reusing pages bbolt freed earlier, while the next filing needs new
// ones; without a margin readiness would flap at the edge of full.
const minFreeBytes = 1 << 20

var probeKey = []byte("probe") // meta: the time of the last probe write

// health is what Writable and LastCommit report; the writer updates it.
type health struct {
	lastCommit time.Time
	// committing is when the batch under way began, zero while the
	// writer waits for work: a disk that stops answering (a hung fsync,
	// a stalled network volume) fails no commit, it holds one for ever.
	committing time.Time
	down       *tocsin.Error // why the store cannot commit; nil while it can
	cause      error         // the failure behind down, to judge recovery
	since      time.Time     // first failure of the current outage
	failures   int           // failed commits in the current outage
}

// Writable reports whether the store can commit: nil while it can, else an
// unavailable *tocsin.Error saying what failed and since when, wrapping the
// last failure (errors.Is(err, syscall.ENOSPC) holds on a full disk). It
// turns nil by itself once a commit succeeds again; while it is non-nil a
// background probe tries a tiny write every 1 to 5 seconds.
func (db *DB) Writable() error {
	db.healthMu.Lock()
	defer db.healthMu.Unlock()
	if db.health.down != nil {
		return db.health.down
	}
	if at := db.health.committing; !at.IsZero() {
		if d := time.Since(at); d >= db.stuckAfter {
			return tocsin.Errorf(tocsin.CodeUnavailable,
				"the store has been committing for %s: the disk is not answering, and filings wait for it", d.Round(time.Second))
		}
	}
	return nil
}

// stuckCommitAfter is how long one batch may take before Writable says
// the disk is not answering. A batch takes milliseconds; the largest, a
// purge of many finished broadcasts, well under a second.
const stuckCommitAfter = 10 * time.Second

// committingSince records that a batch began (or, with the zero time,
// that the writer is done with it).
func (db *DB) committingSince(t time.Time) {
	db.healthMu.Lock()
	db.health.committing = t
	db.healthMu.Unlock()
}

// LastCommit is when the store last committed a transaction (zero before
// the first one since Open).
func (db *DB) LastCommit() time.Time {
	db.healthMu.Lock()
	defer db.healthMu.Unlock()
	return db.health.lastCommit
}

// reason says in words what an I/O failure means for the user.
func reason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full"
	case errors.Is(err, syscall.EDQUOT):
		return "the disk quota is used up"
	case errors.Is(err, syscall.EROFS), errors.Is(err, bolt.ErrDatabaseReadOnly):
		return "the file system is read-only"
	case errors.Is(err, syscall.EIO):
		return "the disk reported an I/O error"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "the store file is not writable"
	case errors.Is(err, syscall.EFBIG):
		return "the store file reached the size limit"
	}
	return "the write to disk failed"
}

// writeFailure is the error an Update gets when bbolt could not commit
// its batch: unavailable (retry later), since nothing was saved.
func writeFailure(op string, err error) *tocsin.Error {
	return &tocsin.Error{
		Code:    tocsin.CodeUnavailable,
		Op:      "boltstore: " + op,
		Message: "the store cannot write: " + reason(err) + "; nothing was saved, try again shortly",
		Err:     err,
	}
}

// markDown records a failed commit. The first failure of an outage is
// logged at ERROR and wakes the probe; later ones only count.
func (db *DB) markDown(op string, err error) {
	now := time.Now()
	db.healthMu.Lock()
	h := &db.health
	first := h.down == nil
	if first {
		h.since, h.failures = now, 0
	}
	h.failures++
	h.cause = err
	h.down = &tocsin.Error{
		Code:    tocsin.CodeUnavailable,
		Op:      "boltstore: " + op,
		Message: fmt.Sprintf("the store cannot write since %s: %s", h.since.Format(time.RFC3339), reason(err)),
		Details: map[string]any{"since": h.since, "failures": h.failures, "failed": op},
		Err:     err,
	}
	db.healthMu.Unlock()
	if first {
		db.log.Error("store unwritable: commits fail until the disk recovers",
			slog.String("op", op), slog.String("reason", reason(err)), slog.Any("error", err))
		select {
		case db.sick <- struct{}{}:
		default: // the probe is already awake
		}
	}
}

// markCommitted records a successful commit and ends an outage once the
// store can really take writes again.
func (db *DB) markCommitted() {
	now := time.Now()
	db.healthMu.Lock()
	h := &db.health
	h.lastCommit = now
	if h.down == nil {
		db.healthMu.Unlock()
		return
	}
	if errors.Is(h.cause, syscall.ENOSPC) {
		if free, ok := freeBytes(db.path); ok && free < minFreeBytes {
			db.healthMu.Unlock()
			return // committed into freed pages; the disk is still full
		}
	}
	since, failures := h.since, h.failures
	h.down, h.cause = nil, nil
	db.healthMu.Unlock()
	db.log.Info("store writable again",
		slog.Duration("unwritable_for", now.Sub(since)), slog.Int("failed_commits", failures))
}

// errUnopened answers Views while the store file could not be opened again.
var errUnopened = &tocsin.Error{Code: tocsin.CodeUnavailable, Op: "boltstore: view",
	Message: "the store file cannot be opened after a disk error; try again shortly"}

// commitFailed handles a failed Commit of the transaction numbered id and
// returns what the batch is answered: nothing saved, or, if the commit
// became visible, the outcome of sealing it.
func (db *DB) commitFailed(id int, err error) error {
	visible, verr := db.visible(id)
	if verr != nil {
		// bbolt unmaps the file to map it larger as it grows; if mapping it
		// again fails (seen on a file system gone read-only under us) the
		// handle is unusable, even for readers, until it is opened again.
		db.log.Warn("store handle unusable after a failed commit; reopening",
			slog.Any("error", err), slog.Any("handle", verr))
		if rerr := db.reopen(); rerr != nil {
			// bbolt's remap error has lost its errno; the reopen's names it.
			err = fmt.Errorf("%w (reopening: %w)", err, rerr)
		}
		if visible, verr = db.visible(id); verr != nil {
			visible = false // nothing was mapped that could have shown it
		}
	}
	db.markDown("commit", err)
	if !visible {
		return writeFailure("commit", err) // rolled back cleanly: nothing saved
	}
	db.log.Warn("commit visible after its meta page failed to sync; sealing it",
		slog.Int("txid", id), slog.Any("error", err))
	db.unsealed = true
	if serr := db.seal(); serr != nil {
		return serr
	}
	return nil // the seal made the commit durable
}

// visible reports whether the meta page of the failed transaction id
// reached the page cache, which makes its changes visible; an error says
// the handle cannot be read at all.
func (db *DB) visible(id int) (bool, error) {
	if db.bolt == nil {
		return false, errUnopened
	}
	rtx, err := db.bolt.Begin(false)
	if err != nil {
		return false, err
	}
	defer rtx.Rollback()
	return rtx.ID() >= id, nil
}

// reopen replaces the bolt handle with a fresh one that reads the file
// again. If the file cannot be opened for writing (a read-only file
// system), a read-only handle keeps Views working and the next commit, the
// probe's at the latest, tries again. Only the writer calls it; it waits
// for running Views.
func (db *DB) reopen() error {
	db.bmu.Lock()
	defer db.bmu.Unlock()
	if db.bolt != nil {
		// The flock is per open file, so the old handle must go first.
		if err := db.bolt.Close(); err != nil {
			db.log.Warn("closing the unusable store handle", slog.Any("error", err))
		}
		db.bolt = nil
	}
	b, err := bolt.Open(db.path, 0o600, boltOptions(false))
	if err == nil {
		if db.readOnly {
			db.log.Info("store reopened for writing")
		}
		db.bolt, db.readOnly = b, false
		return nil
	}
	err = fmt.Errorf("reopen %s: %w", db.path, err)
	ro, rerr := bolt.Open(db.path, 0o600, boltOptions(true))
	if rerr != nil {
		db.log.Error("store file cannot be opened, not even to read", slog.Any("error", rerr))
		return err
	}
	if !db.readOnly {
		db.log.Warn("store reopened read-only: reads work, writes wait for the file system", slog.Any("error", err))
	}
	db.bolt, db.readOnly = ro, true
	return err
}

// seal commits an empty transaction, which makes every visible commit
// durable (see the top of this file). Only the writer calls it.
func (db *DB) seal() error {
	btx, err := db.bolt.Begin(true)
	if err == nil {
		id := btx.ID()
		if err = btx.Commit(); err == nil {
			db.unsealed = false
			db.log.Info("store sealed: earlier commits are durable", slog.Int("txid", id))
			db.markCommitted()
			return nil
		}
	}
	db.markDown("seal", err)
	return &tocsin.Error{
		Code: tocsin.CodeUnavailable,
		Op:   "boltstore: seal",
		Message: "the store could not confirm an earlier write: " + reason(err) +
			"; it may have been saved, check before trying again",
		Err: err,
	}
}

// probeLoop runs until Close. While the store is unwritable it tries a tiny
// real write with capped backoff, so Writable turns nil again without any
// user write once the disk has recovered.
func (db *DB) probeLoop() {
	defer close(db.probeDone)
	for {
		select {
		case <-db.quit:
			return
		case <-db.sick:
		}
		delay := probeMin
		for db.Writable() != nil {
			t := time.NewTimer(delay)
			select {
			case <-db.quit:
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			err := db.Update(ctx, probeWrite)
			cancel()
			if err != nil && !errors.Is(err, ErrClosed) {
				db.log.Debug("store probe failed", slog.Any("error", err))
			}
			delay = min(2*delay, probeMax)
		}
	}
}

// probeWrite stores the time in the meta bucket: a real commit, as small
// as one can be.
func probeWrite(t tocsin.Tx) error {
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	return t.(*tx).btx.Bucket(bucketMeta).Put(probeKey, now)
}
