// Package boltstore keeps Tocsin's state in one bbolt file. Every change is
// one fsynced transaction; concurrent changes are committed together (group
// commit), so many filings share one fsync without any of them waiting for a
// timer.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

var _ tocsin.Store = (*DB)(nil)

// Buckets, all created at Open.
var (
	bucketBroadcasts  = []byte("broadcasts")
	bucketByStatus    = []byte("idx_status")
	bucketByDept      = []byte("idx_department")
	bucketByProvince  = []byte("idx_province")
	bucketSchedule    = []byte("schedule")
	bucketIdempotency = []byte("idempotency")
	bucketOrgs        = []byte("organisations")
	bucketAccounts    = []byte("accounts")
	bucketProviders   = []byte("providers")
	bucketOutbox      = []byte("outbox")
	bucketMeta        = []byte("meta")

	allBuckets = [][]byte{
		bucketBroadcasts, bucketByStatus, bucketByDept, bucketByProvince, bucketSchedule,
		bucketIdempotency, bucketOrgs, bucketAccounts, bucketProviders, bucketOutbox, bucketMeta,
	}
)

// maxBatch bounds how many queued Updates share one commit, so one slow
// batch cannot hold the earliest caller for long.
const maxBatch = 256

// DB is the bbolt-backed Store.
type DB struct {
	bolt    *bolt.DB
	regions tocsin.Regions
	log     *slog.Logger

	// mu guards closed and every send on commits, so Close never closes
	// the channel under a sender.
	mu      sync.RWMutex
	closed  bool
	commits chan *commit  // Updates waiting for the committer
	stopped chan struct{} // closed when the committer has exited
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
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true, // rebuilt on open; halves the pages each commit writes
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: locked by another process (is tocsin already running on this data folder?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{
		bolt: b, regions: regions, log: log,
		commits: make(chan *commit, maxBatch),
		stopped: make(chan struct{}),
	}
	go db.commitLoop()
	return db, nil
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
	<-db.stopped
	return db.bolt.Close()
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.bolt.Path() }

// View runs fn on a consistent read-only snapshot.
func (db *DB) View(ctx context.Context, fn func(tocsin.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&tx{btx: btx, regions: db.regions})
	})
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

// commitLoop is the single writer. It takes whatever Updates are waiting
// when it comes round, runs them in one transaction and answers them all
// after one fsync. An idle store commits a lone Update at once; a busy one
// amortises the fsync over the queue that built up during the last one.
func (db *DB) commitLoop() {
	defer close(db.stopped)
	batch := make([]*commit, 0, maxBatch)
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
		db.commitBatch(batch)
	}
}

// commitBatch runs the batch in one transaction. An Update whose fn fails
// is answered with its error and the transaction is redone without it, so
// the others see exactly the state they would have seen had it run alone
// and failed.
func (db *DB) commitBatch(batch []*commit) {
	pending := batch
	for len(pending) > 0 {
		btx, err := db.bolt.Begin(true)
		if err != nil {
			answer(pending, fmt.Errorf("begin transaction: %w", err))
			return
		}
		t := &tx{btx: btx, regions: db.regions}
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
		if err := btx.Commit(); err != nil {
			db.log.Error("commit failed", slog.Any("error", err), slog.Int("batch", len(pending)))
			answer(pending, fmt.Errorf("commit: %w", err))
			return
		}
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

func answer(cs []*commit, err error) {
	for _, c := range cs {
		c.done <- err
	}
}
