// Package boltstore keeps Tocsin's state in one bbolt file. Every change is
// one fsynced transaction; concurrent changes are committed together (group
// commit), so many filings share one fsync without any of them waiting for a
// timer. A commit the disk refuses (full, read-only, I/O error) fails whole
// with an unavailable error; Writable tells readiness, and the store
// recovers by itself once the disk does (health.go).
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

var _ tocsin.Store = (*DB)(nil)

// Buckets, all created at Open.
var (
	bucketBroadcasts    = []byte("broadcasts")
	bucketByStatus      = []byte("idx_status")
	bucketByDept        = []byte("idx_department")
	bucketByProvince    = []byte("idx_province")
	bucketSchedule      = []byte("schedule")
	bucketWindows       = []byte("idx_send_until") // open broadcasts by the end of their send window
	bucketAwaited       = []byte("idx_awaited")    // dispatches not yet received, by when they were queued
	bucketIdempotency   = []byte("idempotency")
	bucketOrgs          = []byte("organisations")
	bucketAccounts      = []byte("accounts")
	bucketProviders     = []byte("providers")
	bucketOutbox        = []byte("outbox")
	bucketMeta          = []byte("meta")
	bucketAudit         = []byte("audit")
	bucketAuditByTarget = []byte("idx_audit_target")
	bucketCredentials   = []byte("credentials")
	bucketCredsByOrg    = []byte("idx_credential_org")

	allBuckets = append([][]byte{
		bucketBroadcasts, bucketByStatus, bucketByDept, bucketByProvince, bucketSchedule, bucketWindows, bucketAwaited,
		bucketIdempotency, bucketOrgs, bucketAccounts, bucketProviders, bucketOutbox, bucketMeta,
		bucketAudit, bucketAuditByTarget, bucketCredentials, bucketCredsByOrg,
	}, inboxBuckets...)
)

// maxBatch bounds how many queued Updates share one commit, so one slow
// batch cannot hold the earliest caller for long.
const maxBatch = 256

// DB is the bbolt-backed Store.
type DB struct {
	providers providerCache // the decoded provider list, between transactions
	orgs      recordCache[tocsin.Organisation]
	creds     recordCache[tocsin.Credential]

	// bmu guards bolt and readOnly. The writer replaces the handle when
	// bbolt has left it unusable (see reopen in health.go) and is the only
	// one to change them, so it reads them without the lock; Views hold it
	// shared.
	bmu      sync.RWMutex
	bolt     *bolt.DB // nil if the file could not be opened again
	readOnly bool     // bolt is a read-only stand-in until a reopen for writing works

	path    string
	regions tocsin.Regions
	log     *slog.Logger

	// mu guards closed and every send on commits, so Close never closes
	// the channel under a sender.
	mu      sync.RWMutex
	closed  bool
	commits chan *commit  // Updates waiting for the committer
	stopped chan struct{} // closed when the committer has exited

	laterMu sync.Mutex // guards later; taken inside mu, never the other way
	later   []*commit  // UpdateLater work for the next commit

	healthMu sync.Mutex // guards health; taken alone
	health   health
	// stuckAfter is how long one batch may take before Writable says the
	// disk is not answering (stuckCommitAfter; tests shorten it).
	stuckAfter time.Duration

	// unsealed is set when a commit became visible without a confirmed
	// fsync; the writer seals before anything else (see health.go). Only
	// the writer goroutine touches it.
	unsealed bool

	sick      chan struct{} // wakes the probe when the store turns unwritable
	quit      chan struct{} // closed by Close to stop the probe
	probeDone chan struct{} // closed when the probe has exited
	trimDone  chan struct{} // closed when the trimmer has exited (resident.go)
}

// ErrClosed is returned by Update on a closed store (during shutdown, so
// callers see "unavailable, retry later", not a crash).
var ErrClosed = &tocsin.Error{Code: tocsin.CodeUnavailable, Op: "boltstore", Message: "the store is closed"}

type commit struct {
	fn   func(tocsin.Tx) error
	done chan error
}

// Open opens or creates the store at path. It fails rather than waits if
// another process holds the file.
func Open(path string, regions tocsin.Regions, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b, err := bolt.Open(path, 0o600, boltOptions(false))
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: locked by another process (is tocsin already running on this data folder?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = b.Update(func(btx *bolt.Tx) error {
		var missing []laterIndex
		if btx.Bucket(bucketBroadcasts) != nil {
			for _, li := range laterIndexes {
				if btx.Bucket(li.bucket) == nil {
					missing = append(missing, li)
				}
			}
		}
		for _, name := range allBuckets {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return fillIndexes(btx, missing, log)
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{
		bolt: b, path: path, regions: regions, log: log, stuckAfter: stuckCommitAfter,
		commits:   make(chan *commit, maxBatch),
		stopped:   make(chan struct{}),
		sick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		probeDone: make(chan struct{}),
		trimDone:  make(chan struct{}),
	}
	go db.commitLoop()
	go db.probeLoop()
	go db.trimLoop()
	return db, nil
}

// fillIndexes fills the indexes a store from before them lacks, once. A
// record it cannot read is logged and left out rather than keep the store
// from opening: reading it fails by itself anyway.
func fillIndexes(btx *bolt.Tx, missing []laterIndex, log *slog.Logger) error {
	if len(missing) == 0 {
		return nil
	}
	return btx.Bucket(bucketBroadcasts).ForEach(func(k, v []byte) error {
		b, err := decodeBroadcast(v)
		if err != nil {
			log.Error("filling new indexes: a broadcast record cannot be read; it will neither expire nor be checked for late dispatches by itself",
				slog.String("broadcast", formatID(binary.BigEndian.Uint64(k))), slog.Any("error", err))
			return nil
		}
		for _, li := range missing {
			for _, key := range li.keys(b, k) {
				if err := btx.Bucket(li.bucket).Put(key, nil); err != nil {
					return fmt.Errorf("fill index %s: %w", li.bucket, err)
				}
			}
		}
		return nil
	})
}

// boltOptions are the options the store opens its file with.
func boltOptions(readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true, // rebuilt on open; halves the pages each commit writes
		FreelistType:   bolt.FreelistMapType,
		ReadOnly:       readOnly,
	}
}

// Close waits for queued Updates to commit, then closes the file. Updates
// after Close fail with ErrClosed; closing twice is harmless.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.commits)
	db.mu.Unlock()
	close(db.quit) // a probe waiting on the writer still gets its answer
	<-db.stopped
	<-db.probeDone
	<-db.trimDone
	return db.compactAndClose()
}

// compactAndClose closes the file after rewriting it with only live data.
// bbolt copies pages on write and never gives space back, so the file
// keeps old versions of records in free pages: space wasted, and stale
// copies of content that a reader of the raw file could mistake for live
// records. A graceful stop is the cheap moment to drop them; the copy is
// renamed into place only once synced, so a crash midway loses nothing.
func (db *DB) compactAndClose() error {
	if db.bolt == nil {
		return nil // lost in a failed reopen; nothing is open
	}
	if db.readOnly {
		return db.bolt.Close() // cannot write, so cannot compact
	}
	path := db.path
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err == nil {
		err = bolt.Compact(dst, db.bolt, 16<<20)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := db.bolt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		db.log.Warn("store not compacted at close", slog.Any("error", err))
		return nil // the original file is intact and closed
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("compact store: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.path }

// View runs fn on a consistent read-only snapshot.
func (db *DB) View(ctx context.Context, fn func(tocsin.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.bmu.RLock()
	defer db.bmu.RUnlock()
	if db.bolt == nil {
		return errUnopened
	}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		return fn(newTx(btx, db))
	})
	if errors.Is(err, bolt.ErrInvalidMapping) {
		// A failed commit left bbolt unmapped; the writer is reopening it.
		return &tocsin.Error{Code: tocsin.CodeUnavailable, Op: "boltstore: view",
			Message: "the store is being reopened after a disk error; try again shortly", Err: err}
	}
	return err
}

// Update runs fn in a read-write transaction and returns once it is fsynced.
// Once fn has been handed to the committer Update waits for the outcome even
// if ctx ends, so a caller never mistakes a committed change for a failed one.
func (db *DB) Update(ctx context.Context, fn func(tocsin.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err // select below would pick at random between a ready send and a done ctx
	}
	c := &commit{fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.commits <- c:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	db.mu.RUnlock()
	return <-c.done
}

// UpdateLater runs fn in the next transaction the writer commits anyway,
// so it shares that commit's fsync instead of costing one of its own and
// holding up whoever comes next. If nothing else commits within wait, it
// is committed on its own. It returns at once; done is called with the
// outcome, on another goroutine. For changes no caller waits on, such as
// removing published messages from the outbox.
func (db *DB) UpdateLater(wait time.Duration, fn func(tocsin.Tx) error, done func(error)) {
	c := &commit{fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		go done(ErrClosed)
		return
	}
	db.laterMu.Lock()
	db.later = append(db.later, c)
	db.laterMu.Unlock()
	db.mu.RUnlock()
	go func() {
		t := time.NewTimer(wait)
		select {
		case err := <-c.done:
			t.Stop()
			done(err)
			return
		case <-t.C:
		}
		// Nothing committed it: an empty Update brings it along. On a
		// closed store Close commits it.
		_ = db.Update(context.Background(), func(tocsin.Tx) error { return nil })
		done(<-c.done)
	}()
}

// takeLater appends the UpdateLater work waiting to batch.
func (db *DB) takeLater(batch []*commit) []*commit {
	db.laterMu.Lock()
	defer db.laterMu.Unlock()
	batch = append(batch, db.later...)
	db.later = nil
	return batch
}

// commitLoop is the single writer. It takes whatever Updates are waiting
// when it comes round, runs them in one transaction and answers them all
// after one fsync. An idle store commits a lone Update at once; a busy one
// amortises the fsync over the queue that built up during the last one.
// UpdateLater work rides along with whatever comes.
func (db *DB) commitLoop() {
	defer close(db.stopped)
	batch := make([]*commit, 0, maxBatch)
	defer func() {
		// Close has stopped new work; commit what was left for later.
		if later := db.takeLater(batch[:0]); len(later) > 0 {
			db.commitBatch(later)
		}
	}()
	for c := range db.commits {
		batch = append(batch[:0], c)
	fill:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-db.commits:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		db.commitBatch(db.takeLater(batch))
	}
}

// commitBatch runs the batch in one transaction. An Update whose fn fails
// is answered with its error and the transaction is redone without it, so
// the others see exactly the state they would have seen had it run alone
// and failed. If bbolt cannot commit (full disk, I/O error, read-only file
// system) the whole batch is answered with an unavailable error and none
// of it is kept (see health.go).
func (db *DB) commitBatch(batch []*commit) {
	db.committingSince(time.Now())
	defer db.committingSince(time.Time{})
	if db.bolt == nil || db.readOnly {
		if err := db.reopen(); err != nil {
			db.markDown("reopen", err)
			answer(batch, writeFailure("reopen", err))
			return
		}
	}
	if db.unsealed {
		if err := db.seal(); err != nil {
			answer(batch, err)
			return
		}
	}
	pending := batch
	for len(pending) > 0 {
		btx, err := db.bolt.Begin(true)
		if err != nil {
			db.markDown("begin", err)
			answer(pending, writeFailure("begin transaction", err))
			return
		}
		t := newTx(btx, db)
		packAppendOnly(btx)
		failed := -1
		for i, c := range pending {
			if err := run(c.fn, t); err != nil {
				failed = i
				c.done <- err
				break
			}
		}
		if failed >= 0 {
			_ = btx.Rollback()
			pending = append(pending[:failed:failed], pending[failed+1:]...)
			continue
		}
		if err := t.flush(); err != nil {
			_ = btx.Rollback()
			answer(pending, err)
			return
		}
		id := btx.ID()
		err = btx.Commit()
		db.committingSince(time.Time{}) // done with the disk before answering
		if err != nil {
			db.log.Debug("commit failed", slog.Any("error", err), slog.Int("batch", len(pending))) // markDown logs an outage once
			answer(pending, db.commitFailed(id, err))
			return
		}
		db.markCommitted()
		answer(pending, nil)
		return
	}
}

// run calls fn, turning a panic into an error so one bad Update cannot take
// the writer down with the whole batch.
func run(fn func(tocsin.Tx) error, t *tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("update panicked: %v", r)
		}
	}()
	return fn(t)
}

// answer tells every caller of the batch its outcome.
//
// Each answer readies its caller on the writer's own P, where the callers
// would wait behind the writer's next transaction and its fsync until the
// other P stole them or the syscall handed the P off: under load, 10 ms of
// a filing's 13 ms went that way (with 64 concurrent filers on 2 cores).
// Yielding puts the writer behind them, so the answered callers, whose
// 201s are what anyone is waiting for, usually run first, and the writer
// comes back to a larger batch.
func answer(cs []*commit, err error) {
	for _, c := range cs {
		c.done <- err
	}
	if len(cs) > 0 {
		runtime.Gosched()
	}
}

// packAppendOnly fills the pages of the buckets whose keys only ever grow
// (sequence numbers: audit entries, broadcasts, outbox messages), or grow
// at the end of their prefix (the indexes and inboxes, keyed by a name and
// then a sequence), before splitting them. bbolt's default splits a page
// half full, which for appended keys leaves every page but the last half
// empty for good: half the file. A Bucket is cached for the transaction,
// so setting it once holds for every Put of this commit.
func packAppendOnly(btx *bolt.Tx) {
	for _, name := range [][]byte{bucketAudit, bucketBroadcasts, bucketOutbox, bucketAuditByTarget,
		bucketByStatus, bucketByDept, bucketByProvince, bucketInbox, bucketInboxKeys} {
		if b := btx.Bucket(name); b != nil {
			b.FillPercent = appendFill
		}
	}
}

// appendFill leaves a little room in each page for a broadcast record
// that grows when it is rewritten.
const appendFill = 0.95
