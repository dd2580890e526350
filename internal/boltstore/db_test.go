package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, time.October, 9, 9, 0, 0, 0, tocsin.Shanghai)

// mustOpen opens a store in a fresh temporary folder, closed at cleanup.
func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "tocsin.db"), region.Default(), nil)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func mustUpdate(tb testing.TB, db *DB, fn func(tocsin.Tx) error) {
	tb.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

func mustView(tb testing.TB, db *DB, fn func(tocsin.ReadTx) error) {
	tb.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		tb.Fatalf("View: %v", err)
	}
}

func broadcast(id string, status tocsin.Status, dept string, sendAt time.Time, scope ...string) *tocsin.Broadcast {
	return &tocsin.Broadcast{
		ID: id, Status: status, Title: "t " + id, Content: "c", Scope: scope,
		SendAt: sendAt, Department: dept, FiledAt: t0.Add(-24 * time.Hour),
	}
}

// putNew allocates an ID and stores a broadcast under it.
func putNew(tx tocsin.Tx, status tocsin.Status, dept string, sendAt time.Time, scope ...string) (string, error) {
	id, err := tx.NewBroadcastID()
	if err != nil {
		return "", err
	}
	return id, tx.PutBroadcast(broadcast(id, status, dept, sendAt, scope...))
}

func list(tb testing.TB, db *DB, q tocsin.Query) []string {
	tb.Helper()
	var out []string
	mustView(tb, db, func(tx tocsin.ReadTx) error {
		page, err := tx.Broadcasts(q)
		for _, b := range page.Broadcasts {
			out = append(out, b.ID)
		}
		return err
	})
	return out
}

func count(tb testing.TB, db *DB) int { return len(list(tb, db, tocsin.Query{})) }

// holdCommitter occupies the single writer until the returned release is
// called, and then waits until n more Updates are queued behind it, so the
// next batch is exactly those n.
func holdCommitter(tb testing.TB, db *DB) (queued func(n int), release func()) {
	tb.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(context.Background(), func(tocsin.Tx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(gate)
			if err := <-done; err != nil {
				tb.Errorf("holding Update: %v", err)
			}
		})
	}
	tb.Cleanup(release)
	queued = func(n int) {
		for len(db.commits) < n {
			runtime.Gosched()
		}
	}
	return queued, release
}

func TestReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tocsin.db")
	ctx := context.Background()
	db, err := Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	err = db.Update(ctx, func(tx tocsin.Tx) error {
		var err error
		if id, err = putNew(tx, tocsin.StatusApproved, "gd-met", t0, "440100"); err != nil {
			return err
		}
		if err := tx.PutOrganisation(&tocsin.Organisation{ID: "gd-met", Name: "Guangdong Meteorological Service", Role: tocsin.RoleDepartment, SenderCode: "12379440"}); err != nil {
			return err
		}
		if err := tx.PutAccount(&tocsin.Account{Username: "gd-met", Org: "gd-met", PasswordHash: "h"}); err != nil {
			return err
		}
		if err := tx.PutProvider(&tocsin.Provider{ID: "cmcc", Name: "China Mobile", Regions: []string{"440000"}}); err != nil {
			return err
		}
		if err := tx.PutIdempotency("gd-met", "k", tocsin.IdempotencyRecord{BroadcastID: id, RequestHash: "abc", At: t0}); err != nil {
			return err
		}
		m, err := tocsin.NewOutboxMessage("cmcc", id+".broadcast.cmcc", time.Time{}, tocsin.Dispatch{BroadcastID: id, Charge: "free"})
		if err != nil {
			return err
		}
		return tx.Enqueue(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, region.Default(), nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	mustView(t, db, func(tx tocsin.ReadTx) error {
		b, err := tx.Broadcast(id)
		if err != nil {
			return err
		}
		if b.Status != tocsin.StatusApproved || !b.SendAt.Equal(t0) || !slices.Equal(b.Scope, []string{"440100"}) {
			t.Errorf("broadcast after reopen = %+v", b)
		}
		if o, err := tx.Organisation("gd-met"); err != nil || o.SenderCode != "12379440" {
			t.Errorf("organisation = %+v, %v", o, err)
		}
		if a, err := tx.Account("gd-met"); err != nil || a.PasswordHash != "h" {
			t.Errorf("account = %+v, %v", a, err)
		}
		if p, err := tx.Provider("cmcc"); err != nil || p.Name != "China Mobile" {
			t.Errorf("provider = %+v, %v", p, err)
		}
		if rec, ok, err := tx.Idempotency("gd-met", "k"); err != nil || !ok || rec.BroadcastID != id {
			t.Errorf("idempotency = %+v %v %v", rec, ok, err)
		}
		if n, err := tx.OutboxLen(); err != nil || n != 1 {
			t.Errorf("outbox len = %d, %v", n, err)
		}
		if ids, err := tx.DueReleases(t0); err != nil || !slices.Equal(ids, []string{id}) {
			t.Errorf("schedule after reopen = %v, %v", ids, err)
		}
		if got, err := tx.Broadcasts(tocsin.Query{Department: "gd-met"}); err != nil || len(got.Broadcasts) != 1 {
			t.Errorf("department index after reopen = %d, %v", len(got.Broadcasts), err)
		}
		return nil
	})
	// Sequences continue where they stopped.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		next, err := tx.NewBroadcastID()
		if err != nil {
			return err
		}
		if next != "BC000002" {
			t.Errorf("next id after reopen = %s, want BC000002", next)
		}
		if err := tx.Enqueue(tocsin.OutboxMessage{Provider: "cmcc"}); err != nil {
			return err
		}
		msgs, err := tx.Outbox(10)
		if err != nil || len(msgs) != 2 || msgs[1].Seq != 2 {
			t.Errorf("outbox after reopen = %+v, %v", msgs, err)
		}
		return nil
	})
}

func TestOpenLockedFailsFast(t *testing.T) {
	db := mustOpen(t)
	start := time.Now()
	second, err := Open(db.Path(), region.Default(), nil)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), db.Path()) {
		t.Errorf("error %q does not say the file %s is locked", err, db.Path())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
	// The first is unaffected.
	mustUpdate(t, db, func(tx tocsin.Tx) error { _, err := tx.NewBroadcastID(); return err })
}

func TestOpenBadPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "dir", "tocsin.db"), region.Default(), nil)
	if err == nil || !strings.Contains(err.Error(), "open store") {
		t.Errorf("Open in a missing folder: %v", err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	db := mustOpen(t)
	const n = 200
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx tocsin.Tx) error {
				var err error
				ids[i], err = putNew(tx, tocsin.StatusPendingReview, fmt.Sprintf("dept-%d", i%7), t0, "440100")
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	sorted := slices.Sorted(slices.Values(ids))
	if len(slices.Compact(sorted)) != n || sorted[0] != "BC000001" || sorted[n-1] != formatID(n) {
		t.Errorf("IDs are not 1..%d: first %s last %s", n, sorted[0], sorted[len(sorted)-1])
	}
	if got := count(t, db); got != n {
		t.Errorf("%d broadcasts visible, want %d", got, n)
	}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		for i, id := range ids {
			b, err := tx.Broadcast(id)
			if err != nil || b.Department != fmt.Sprintf("dept-%d", i%7) {
				t.Errorf("broadcast %s of Update %d: %+v, %v", id, i, b, err)
			}
		}
		return nil
	})
}

func TestGroupCommitSharesOneTransaction(t *testing.T) {
	db := mustOpen(t)
	queued, release := holdCommitter(t, db)
	const n = 50
	var mu sync.Mutex
	txs := map[tocsin.Tx]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := db.Update(context.Background(), func(tx tocsin.Tx) error {
				mu.Lock()
				txs[tx]++
				mu.Unlock()
				_, err := putNew(tx, tocsin.StatusPendingReview, "d", t0, "440100")
				return err
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	queued(n)
	release()
	wg.Wait()
	if len(txs) != 1 {
		t.Errorf("%d Updates queued together ran in %d transactions, want 1", n, len(txs))
	}
	if got := count(t, db); got != n {
		t.Errorf("%d broadcasts visible, want %d", got, n)
	}
}

func TestFailingUpdateInBatchLeavesNoTrace(t *testing.T) {
	db := mustOpen(t)
	queued, release := holdCommitter(t, db)
	errBoom := errors.New("boom")
	const n = 20
	const failing = 7 // in the middle of the batch
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	runs := make([]int, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx tocsin.Tx) error {
				runs[i]++ // the committer runs fns one at a time
				id, err := putNew(tx, tocsin.StatusApproved, fmt.Sprintf("dept-%d", i), t0, "440100")
				if err != nil {
					return err
				}
				ids[i] = id
				if err := tx.PutIdempotency(fmt.Sprintf("dept-%d", i), "k", tocsin.IdempotencyRecord{BroadcastID: id}); err != nil {
					return err
				}
				if err := tx.Enqueue(tocsin.OutboxMessage{Provider: "cmcc", MsgID: id}); err != nil {
					return err
				}
				if i == failing {
					return fmt.Errorf("update %d: %w", i, errBoom)
				}
				return nil
			})
		})
		queued(i + 1) // keep queue order = i, so the failing one is mid-batch
	}
	release()
	wg.Wait()

	for i, err := range errs {
		if i == failing {
			if !errors.Is(err, errBoom) {
				t.Errorf("failing Update returned %v, want boom", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Update %d failed alongside the failing one: %v", i, err)
		}
	}
	if runs[failing] != 1 {
		t.Errorf("the failing fn ran %d times, want 1", runs[failing])
	}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		all, err := tx.Broadcasts(tocsin.Query{})
		if err != nil {
			return err
		}
		if len(all.Broadcasts) != n-1 {
			t.Errorf("%d broadcasts stored, want %d", len(all.Broadcasts), n-1)
		}
		owner := map[string]string{}
		for _, b := range all.Broadcasts {
			owner[b.ID] = b.Department
			if b.Department == fmt.Sprintf("dept-%d", failing) {
				t.Errorf("the failing Update's broadcast %s was stored", b.ID)
			}
		}
		for i, id := range ids {
			if i == failing {
				continue
			}
			if owner[id] != fmt.Sprintf("dept-%d", i) {
				t.Errorf("Update %d's id %s belongs to %q", i, id, owner[id])
			}
		}
		// Sequence numbers were rolled back with the failure: no gap.
		for seq := 1; seq < n; seq++ {
			if _, ok := owner[formatID(uint64(seq))]; !ok {
				t.Errorf("no broadcast %s: the failed allocation left a gap", formatID(uint64(seq)))
			}
		}
		if _, ok, _ := tx.Idempotency(fmt.Sprintf("dept-%d", failing), "k"); ok {
			t.Error("the failing Update's idempotency record was stored")
		}
		if n2, _ := tx.OutboxLen(); n2 != n-1 {
			t.Errorf("outbox len = %d, want %d", n2, n-1)
		}
		msgs, _ := tx.Outbox(100)
		if len(msgs) != n-1 {
			t.Errorf("%d outbox messages, want %d", len(msgs), n-1)
		}
		ids, _ := tx.DueReleases(t0)
		if len(ids) != n-1 {
			t.Errorf("%d scheduled, want %d", len(ids), n-1)
		}
		return nil
	})
}

func TestPanickingUpdate(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	err := db.Update(ctx, func(tx tocsin.Tx) error {
		if _, err := putNew(tx, tocsin.StatusPendingReview, "d", t0, "440100"); err != nil {
			return err
		}
		var m map[string]int
		m["boom"]++ // panics
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("panicking Update returned %v", err)
	}
	if got := count(t, db); got != 0 {
		t.Errorf("the panicking Update left %d broadcasts", got)
	}

	// Next to others in one batch.
	queued, release := holdCommitter(t, db)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.Update(ctx, func(tx tocsin.Tx) error {
				if _, err := putNew(tx, tocsin.StatusPendingReview, "d", t0, "440100"); err != nil {
					return err
				}
				if i == 2 {
					panic("bad update")
				}
				return nil
			})
		})
		queued(i + 1)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	if got := count(t, db); got != 4 {
		t.Errorf("%d broadcasts, want 4", got)
	}

	// The store keeps working.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		_, err := putNew(tx, tocsin.StatusPendingReview, "d", t0, "440100")
		return err
	})
	if got := count(t, db); got != 5 {
		t.Errorf("%d broadcasts, want 5", got)
	}
}

func TestUpdateContext(t *testing.T) {
	db := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 { // a ready send must not win against a done context
		ran := false
		err := db.Update(ctx, func(tx tocsin.Tx) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Fatalf("Update with a cancelled context: ran=%v err=%v", ran, err)
		}
	}
	err := db.View(ctx, func(tocsin.ReadTx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled context: %v", err)
	}
}

func TestUpdateAfterClose(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "tocsin.db"), region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Updates racing Close either commit or fail with ErrClosed; none panics.
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx tocsin.Tx) error {
				_, err := tx.NewBroadcastID()
				return err
			})
		})
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Update %d racing Close: %v", i, err)
		}
	}
	err = db.Update(context.Background(), func(tocsin.Tx) error { return nil })
	if !errors.Is(err, ErrClosed) || tocsin.ErrorCode(err) != tocsin.CodeUnavailable {
		t.Errorf("Update after Close = %v, want ErrClosed (unavailable)", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	db := mustOpen(t)
	mustView(t, db, func(tx tocsin.ReadTx) error {
		lookups := map[string]error{}
		_, lookups["broadcast"] = tx.Broadcast("BC000001")
		_, lookups["malformed broadcast id"] = tx.Broadcast("XX1")
		_, lookups["zero broadcast id"] = tx.Broadcast("BC000000")
		_, lookups["organisation"] = tx.Organisation("nobody")
		_, lookups["account"] = tx.Account("nobody")
		_, lookups["provider"] = tx.Provider("nobody")
		for what, err := range lookups {
			if tocsin.ErrorCode(err) != tocsin.CodeNotFound {
				t.Errorf("%s: %v, want not_found", what, err)
			}
		}
		if _, ok, err := tx.Idempotency("o", "k"); ok || err != nil {
			t.Errorf("missing idempotency key: %v %v", ok, err)
		}
		if _, ok, err := tx.NextRelease(); ok || err != nil {
			t.Errorf("NextRelease on an empty store: %v %v", ok, err)
		}
		return nil
	})
	err := db.Update(context.Background(), func(tx tocsin.Tx) error {
		return tx.PutBroadcast(&tocsin.Broadcast{ID: "nonsense"})
	})
	if err == nil {
		t.Error("PutBroadcast with a malformed id succeeded")
	}
}

func TestStatusIndex(t *testing.T) {
	db := mustOpen(t)
	var id string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		id, err = putNew(tx, tocsin.StatusPendingReview, "gd-met", t0, "440100")
		return err
	})
	statuses := []tocsin.Status{
		tocsin.StatusApproved, tocsin.StatusDispatching, tocsin.StatusCompleted,
	}
	check := func(want tocsin.Status) {
		t.Helper()
		// Listing skips index entries its record no longer matches, so
		// it cannot see a stale one: read the index itself.
		if got := statusEntries(t, db, id); !slices.Equal(got, []tocsin.Status{want}) {
			t.Errorf("status index holds %s under %v, want [%s]", id, got, want)
		}
		for _, s := range tocsin.Statuses {
			got := list(t, db, tocsin.Query{Status: []tocsin.Status{s}})
			if s == want && !slices.Equal(got, []string{id}) {
				t.Errorf("status %s lists %v, want [%s]", s, got, id)
			}
			if s != want && len(got) != 0 {
				t.Errorf("status %s lists %v after the move to %s", s, got, want)
			}
		}
	}
	check(tocsin.StatusPendingReview)
	for _, s := range statuses {
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			b, err := tx.Broadcast(id)
			if err != nil {
				return err
			}
			b.Status = s
			return tx.PutBroadcast(b)
		})
		check(s)
	}
	// Written twice in one transaction, through the same value and then
	// a fresh one: each write moves the entries of the one before.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		b, err := tx.Broadcast(id)
		if err != nil {
			return err
		}
		b.Status = tocsin.StatusDispatching
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		b.Status = tocsin.StatusCancelled
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		return tx.PutBroadcast(broadcast(id, tocsin.StatusExpired, "gd-met", t0, "440100"))
	})
	check(tocsin.StatusExpired)
}

// statusEntries lists the statuses the status index holds id under.
func statusEntries(tb testing.TB, db *DB, id string) []tocsin.Status {
	tb.Helper()
	seq, _ := parseID(id)
	var out []tocsin.Status
	db.bmu.RLock() // the writer may replace the handle (see DB.bmu)
	defer db.bmu.RUnlock()
	err := db.bolt.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketByStatus).ForEach(func(k, _ []byte) error {
			if prefix, ok := bytes.CutSuffix(k, u64(seq)); ok {
				out = append(out, tocsin.Status(bytes.TrimSuffix(prefix, []byte{0})))
			}
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestScheduleIndex(t *testing.T) {
	db := mustOpen(t)
	t1, t2, t3 := t0, t0.Add(time.Hour), t0.Add(48*time.Hour)
	var a, b, c string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		if a, err = putNew(tx, tocsin.StatusApproved, "d", t2, "440100"); err != nil {
			return err
		}
		if b, err = putNew(tx, tocsin.StatusApproved, "d", t1, "440100"); err != nil {
			return err
		}
		c, err = putNew(tx, tocsin.StatusPendingReview, "d", t1, "440100")
		return err
	})
	set := func(id string, status tocsin.Status, sendAt time.Time) {
		t.Helper()
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			bc, err := tx.Broadcast(id)
			if err != nil {
				return err
			}
			bc.Status, bc.SendAt = status, sendAt
			return tx.PutBroadcast(bc)
		})
	}
	type want struct {
		dueAt []time.Time
		due   [][]string
		next  time.Time // zero: none
	}
	check := func(step string, w want) {
		t.Helper()
		mustView(t, db, func(tx tocsin.ReadTx) error {
			for i, at := range w.dueAt {
				got, err := tx.DueReleases(at)
				if err != nil || !slices.Equal(got, w.due[i]) {
					t.Errorf("%s: DueReleases(%v) = %v, %v; want %v", step, at, got, err, w.due[i])
				}
			}
			next, ok, err := tx.NextRelease()
			if err != nil || ok == w.next.IsZero() || (ok && !next.Equal(w.next)) {
				t.Errorf("%s: NextRelease = %v %v %v, want %v", step, next, ok, err, w.next)
			}
			return nil
		})
	}
	check("initial", want{
		dueAt: []time.Time{t1.Add(-time.Nanosecond), t1, t2, t3},
		due:   [][]string{nil, {b}, {b, a}, {b, a}}, // oldest send time first, pending c never
		next:  t1,
	})
	set(b, tocsin.StatusApproved, t3) // rescheduled
	check("b moved later", want{
		dueAt: []time.Time{t1, t2, t3},
		due:   [][]string{nil, {a}, {a, b}},
		next:  t2,
	})
	set(a, tocsin.StatusDispatching, t2) // released
	check("a released", want{
		dueAt: []time.Time{t2, t3},
		due:   [][]string{nil, {b}},
		next:  t3,
	})
	set(c, tocsin.StatusApproved, t1) // approved late
	check("c approved", want{
		dueAt: []time.Time{t1, t3},
		due:   [][]string{{c}, {c, b}},
		next:  t1,
	})
	set(b, tocsin.StatusWithdrawn, t3)
	set(c, tocsin.StatusCancelled, t1)
	check("nothing approved", want{dueAt: []time.Time{t3.Add(time.Hour)}, due: [][]string{nil}})
}

func TestDepartmentAndProvinceIndexes(t *testing.T) {
	db := mustOpen(t)
	var gd, gdMet, multi string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		// "gd" is a prefix of "gd-met": the index must not mix them.
		if gd, err = putNew(tx, tocsin.StatusPendingReview, "gd", t0, "440100"); err != nil {
			return err
		}
		if gdMet, err = putNew(tx, tocsin.StatusPendingReview, "gd-met", t0, "440300"); err != nil {
			return err
		}
		multi, err = putNew(tx, tocsin.StatusPendingReview, "mem", t0, "440000", "450100")
		return err
	})
	tests := []struct {
		q    tocsin.Query
		want []string
	}{
		{tocsin.Query{Department: "gd"}, []string{gd}},
		{tocsin.Query{Department: "gd-met"}, []string{gdMet}},
		{tocsin.Query{Department: "g"}, nil},
		{tocsin.Query{Province: "440000"}, []string{multi, gdMet, gd}},
		{tocsin.Query{Province: "450000"}, []string{multi}},
		{tocsin.Query{Province: "110000"}, nil},
		{tocsin.Query{Department: "gd-met", Province: "450000"}, nil},
		{tocsin.Query{Province: "450000", Status: []tocsin.Status{tocsin.StatusPendingReview}}, []string{multi}},
		{tocsin.Query{Province: "450000", Status: []tocsin.Status{tocsin.StatusApproved}}, nil},
		{tocsin.Query{Emergency: new(bool)}, []string{multi, gdMet, gd}},
	}
	for _, tt := range tests {
		if got := list(t, db, tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("%+v lists %v, want %v", tt.q, got, tt.want)
		}
	}
	// Rescoping moves the broadcast between provinces.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		b, err := tx.Broadcast(multi)
		if err != nil {
			return err
		}
		b.Scope = []string{"450100"}
		return tx.PutBroadcast(b)
	})
	if got := list(t, db, tocsin.Query{Province: "440000"}); !slices.Equal(got, []string{gdMet, gd}) {
		t.Errorf("Guangdong after rescoping: %v", got)
	}
	if got := list(t, db, tocsin.Query{Province: "450000"}); !slices.Equal(got, []string{multi}) {
		t.Errorf("Guangxi after rescoping: %v", got)
	}
}

func TestBroadcastsPagination(t *testing.T) {
	db := mustOpen(t)
	var all []string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		for i := range 10 {
			dept := "a"
			if i%2 == 1 {
				dept = "b"
			}
			id, err := putNew(tx, tocsin.StatusPendingReview, dept, t0, "440100")
			if err != nil {
				return err
			}
			all = append([]string{id}, all...)
		}
		return nil
	})
	for _, q := range []tocsin.Query{{}, {Department: "b"}, {Status: []tocsin.Status{tocsin.StatusPendingReview}}, {Province: "440000"}} {
		want := list(t, db, q)
		for limit := 1; limit <= 11; limit++ {
			q := q
			q.Limit = limit
			var got []string
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("%+v: pagination does not end", q)
				}
				var page tocsin.Page
				mustView(t, db, func(tx tocsin.ReadTx) error {
					var err error
					page, err = tx.Broadcasts(q)
					return err
				})
				for _, b := range page.Broadcasts {
					got = append(got, b.ID)
				}
				if q.Cursor = page.NextCursor; q.Cursor == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v walked %v, want %v", q, got, want)
			}
		}
	}
	if got := list(t, db, tocsin.Query{}); !slices.Equal(got, all) {
		t.Errorf("Limit 0 lists %v, want all newest first %v", got, all)
	}
	if got := list(t, db, tocsin.Query{Cursor: all[2]}); !slices.Equal(got, all[3:]) {
		t.Errorf("after cursor %s: %v", all[2], got)
	}
	err := db.View(context.Background(), func(tx tocsin.ReadTx) error {
		_, err := tx.Broadcasts(tocsin.Query{Cursor: "bogus"})
		return err
	})
	if tocsin.ErrorCode(err) != tocsin.CodeInvalid {
		t.Errorf("malformed cursor: %v", err)
	}
}

func TestOutbox(t *testing.T) {
	db := mustOpen(t)
	enqueuedAt := time.Date(2026, 12, 2, 9, 30, 0, 123456789, tocsin.Shanghai)
	enqueue := func(providers ...string) {
		t.Helper()
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			for _, p := range providers {
				m, err := tocsin.NewOutboxMessage(p, "m-"+p, enqueuedAt, tocsin.Dispatch{BroadcastID: "BC000001", Type: tocsin.DispatchBroadcast, Charge: "free"})
				if err != nil {
					return err
				}
				m.Seq = 999 // the store numbers it
				if err := tx.Enqueue(m); err != nil {
					return err
				}
			}
			return nil
		})
	}
	state := func() (seqs []uint64, providers []string, n int) {
		t.Helper()
		mustView(t, db, func(tx tocsin.ReadTx) error {
			msgs, err := tx.Outbox(100)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				seqs = append(seqs, m.Seq)
				providers = append(providers, m.Provider)
			}
			n, err = tx.OutboxLen()
			return err
		})
		return seqs, providers, n
	}
	dequeue := func(seqs ...uint64) {
		t.Helper()
		mustUpdate(t, db, func(tx tocsin.Tx) error { return tx.Dequeue(seqs...) })
	}

	if seqs, _, n := state(); len(seqs) != 0 || n != 0 {
		t.Fatalf("empty outbox: %v, len %d", seqs, n)
	}
	enqueue("cmcc", "cucc", "ctcc")
	seqs, providers, n := state()
	if !slices.Equal(seqs, []uint64{1, 2, 3}) || !slices.Equal(providers, []string{"cmcc", "cucc", "ctcc"}) || n != 3 {
		t.Fatalf("after enqueue: seqs %v providers %v len %d", seqs, providers, n)
	}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		msgs, err := tx.Outbox(2)
		if err != nil || len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Seq != 2 {
			t.Errorf("Outbox(2) = %+v, %v", msgs, err)
		}
		d, err := msgs[0].Dispatch()
		if m := msgs[0]; err != nil || m.MsgID != "m-cmcc" || m.BroadcastID != "BC000001" || m.Type != tocsin.DispatchBroadcast ||
			!m.EnqueuedAt.Equal(enqueuedAt) || d.Charge != "free" || d.BroadcastID != "BC000001" {
			t.Errorf("message round trip: %+v, %+v, %v", m, d, err)
		}
		if msgs, _ := tx.Outbox(0); len(msgs) != 0 {
			t.Errorf("Outbox(0) = %d messages", len(msgs))
		}
		return nil
	})

	dequeue(1, 3, 99) // 99 was never there
	if seqs, _, n := state(); !slices.Equal(seqs, []uint64{2}) || n != 1 {
		t.Errorf("after dequeue 1, 3, 99: seqs %v len %d", seqs, n)
	}
	dequeue(2, 2, 1) // duplicates and already-removed seqs
	if seqs, _, n := state(); len(seqs) != 0 || n != 0 {
		t.Errorf("after dequeue all: seqs %v len %d", seqs, n)
	}
	enqueue("cmcc")
	if seqs, _, n := state(); !slices.Equal(seqs, []uint64{4}) || n != 1 {
		t.Errorf("seqs are never reused: %v len %d", seqs, n)
	}
	dequeue()
	if _, _, n := state(); n != 1 {
		t.Errorf("empty dequeue changed len to %d", n)
	}
}

func TestViewCopiesOut(t *testing.T) {
	db := mustOpen(t)
	var id string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		id, err = putNew(tx, tocsin.StatusPendingReview, "d", t0, "440100")
		return err
	})
	var b *tocsin.Broadcast
	mustView(t, db, func(tx tocsin.ReadTx) error {
		var err error
		b, err = tx.Broadcast(id)
		return err
	})
	// Overwrite the page the value came from, then read the old copy.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		for range 100 {
			if _, err := putNew(tx, tocsin.StatusPendingReview, strings.Repeat("x", 50), t0, "440100"); err != nil {
				return err
			}
		}
		nb, err := tx.Broadcast(id)
		if err != nil {
			return err
		}
		nb.Title = "changed"
		return tx.PutBroadcast(nb)
	})
	if b.Title != "t "+id || b.Department != "d" {
		t.Errorf("value read in a finished transaction changed: %+v", b)
	}
}

// Organisations read in a transaction are remembered for it, so what it
// hands out must be copies, and a write must be seen by the next read.
func TestOrganisationWithinATransaction(t *testing.T) {
	db := mustOpen(t)
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		return tx.PutOrganisation(&tocsin.Organisation{ID: "gd-met", Name: "Guangdong Meteorological Bureau", Role: tocsin.RoleDepartment})
	})
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		first, err := tx.Organisation("gd-met")
		if err != nil {
			return err
		}
		first.Name = "changed by a caller"
		again, err := tx.Organisation("gd-met")
		if err != nil {
			return err
		}
		if again.Name != "Guangdong Meteorological Bureau" {
			t.Errorf("a caller's change reached the next read: %q", again.Name)
		}
		again.Disabled = true
		if err := tx.PutOrganisation(again); err != nil {
			return err
		}
		written, err := tx.Organisation("gd-met")
		if err != nil {
			return err
		}
		if !written.Disabled {
			t.Error("a read after PutOrganisation did not see the write")
		}
		return nil
	})
	mustView(t, db, func(tx tocsin.ReadTx) error {
		o, err := tx.Organisation("gd-met")
		if err == nil && (!o.Disabled || o.Name != "Guangdong Meteorological Bureau") {
			t.Errorf("stored organisation = %+v", o)
		}
		return err
	})
}

// commitCounter counts the transactions Updates ran in. It keeps the last
// Tx alive, so a new transaction can never reuse its address.
type commitCounter struct {
	mu      sync.Mutex
	last    tocsin.Tx // guarded by mu
	commits int       // guarded by mu
}

func (c *commitCounter) see(tx tocsin.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tx != c.last {
		c.last = tx
		c.commits++
	}
}

func benchUpdate(b *testing.B, parallel bool) {
	db := mustOpen(b)
	var counter commitCounter
	fn := func(tx tocsin.Tx) error {
		counter.see(tx)
		_, err := putNew(tx, tocsin.StatusPendingReview, "gd-met", t0, "440100")
		return err
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := db.Update(context.Background(), fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := db.Update(context.Background(), fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(counter.commits)/float64(b.N), "commits/op")
}

func BenchmarkUpdateSerial(b *testing.B)   { benchUpdate(b, false) }
func BenchmarkUpdateParallel(b *testing.B) { benchUpdate(b, true) }

// Expiry reads the send-window index, not every open broadcast: it must
// hold exactly the open broadcasts with a window, by its end, and be
// built once for a store from before it.
func TestSendWindowIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tocsin.db")
	db, err := Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	put := func(id string, status tocsin.Status, until *time.Time) {
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			b := broadcast(id, status, "gd-met", t0, "440100")
			b.SendUntil = until
			return tx.PutBroadcast(b)
		})
	}
	put("BC000001", tocsin.StatusPendingReview, &t2)
	put("BC000002", tocsin.StatusDispatching, &t1)
	put("BC000003", tocsin.StatusApproved, nil)  // no window
	put("BC000004", tocsin.StatusCompleted, &t0) // finished: cannot expire
	put("BC000005", tocsin.StatusApproved, &t1)  // then withdrawn
	put("BC000005", tocsin.StatusWithdrawn, &t1) // leaves the index
	check := func(db *DB, step string) {
		t.Helper()
		for _, tc := range []struct {
			at   time.Time
			want []string
		}{
			{t0, nil},
			{t1, []string{"BC000002"}},
			{t2, []string{"BC000002", "BC000001"}},
		} {
			mustView(t, db, func(tx tocsin.ReadTx) error {
				if got, err := tx.WindowsClosedBy(tc.at); err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("%s: WindowsClosedBy(%v) = %v, %v; want %v", step, tc.at, got, err, tc.want)
				}
				return nil
			})
		}
	}
	check(db, "kept as written")
	db = reopenWithout(t, db, path, bucketWindows)
	defer db.Close()
	check(db, "rebuilt at open")
}

// The late check and the dead-letter check read the awaited index, not every
// dispatching broadcast: it must hold exactly the queued dispatches of
// dispatching broadcasts, oldest first, follow each change of a record,
// and be built once for a store from before it.
func TestAwaitedIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tocsin.db")
	db, err := Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	put := func(id string, status tocsin.Status, emergency bool, providers ...tocsin.ProviderProgress) {
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			b := broadcast(id, status, "gd-met", t0, "440100")
			if emergency {
				b.Emergency = &tocsin.Emergency{Type: "natural_disaster"}
			}
			b.Providers = providers
			return tx.PutBroadcast(b)
		})
	}
	queued := func(p string, at time.Time, late bool) tocsin.ProviderProgress {
		return tocsin.ProviderProgress{Provider: p, Status: tocsin.DeliveryQueued, QueuedAt: at, Late: late}
	}
	received := tocsin.ProviderProgress{Provider: "ctcc", Status: tocsin.DeliveryReceived, QueuedAt: t0}
	put("BC000001", tocsin.StatusDispatching, true, queued("cmcc", t2, false), queued("cucc", t0, true), received)
	put("BC000002", tocsin.StatusDispatching, false, queued("cmcc", t1, false))
	put("BC000003", tocsin.StatusCompleted, true, queued("cmcc", t0, false)) // finished: awaits nothing
	put("BC000004", tocsin.StatusDispatching, true, queued("cmcc", t0, false))
	put("BC000004", tocsin.StatusDispatching, true, received) // received since: leaves the index
	awaited := func(id, p string, at time.Time, emergency, late bool) tocsin.Awaited {
		return tocsin.Awaited{BroadcastID: id, Provider: p, QueuedAt: at, Emergency: emergency, Late: late}
	}
	check := func(db *DB, step string) {
		t.Helper()
		for _, tc := range []struct {
			before time.Time
			want   []tocsin.Awaited
		}{
			{t0, nil},
			{t1, []tocsin.Awaited{awaited("BC000001", "cucc", t0, true, true)}},
			{t3, []tocsin.Awaited{
				awaited("BC000001", "cucc", t0, true, true),
				awaited("BC000002", "cmcc", t1, false, false),
				awaited("BC000001", "cmcc", t2, true, false),
			}},
		} {
			mustView(t, db, func(tx tocsin.ReadTx) error {
				got, err := tx.AwaitedBefore(tc.before)
				if err != nil || len(got) != len(tc.want) {
					t.Errorf("%s: AwaitedBefore(%v) = %+v, %v; want %+v", step, tc.before, got, err, tc.want)
					return nil
				}
				for i := range got {
					if g, w := got[i], tc.want[i]; g.BroadcastID != w.BroadcastID || g.Provider != w.Provider ||
						!g.QueuedAt.Equal(w.QueuedAt) || g.Emergency != w.Emergency || g.Late != w.Late {
						t.Errorf("%s: AwaitedBefore(%v)[%d] = %+v; want %+v", step, tc.before, i, g, w)
					}
				}
				return nil
			})
		}
	}
	check(db, "kept as written")
	db = reopenWithout(t, db, path, bucketAwaited)
	defer db.Close()
	check(db, "rebuilt at open")
}

// reopenWithout makes db a store from before the index in bucket, by
// deleting it, and opens it again, which must build the index.
func reopenWithout(t *testing.T, db *DB, path string, bucket []byte) *DB {
	t.Helper()
	db.bmu.RLock()
	err := db.bolt.Update(func(btx *bolt.Tx) error { return btx.DeleteBucket(bucket) })
	db.bmu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return reopened
}

// BenchmarkProgressUpdate is the receipts path's store work: one
// transaction reads 100 dispatching broadcasts and writes each back with
// a provider's progress moved on, its status and indexes unchanged.
func BenchmarkProgressUpdate(b *testing.B) {
	const perTx = 100
	db := mustOpen(b)
	ids := make([]string, perTx)
	mustUpdate(b, db, func(tx tocsin.Tx) error {
		for i := range ids {
			id, err := tx.NewBroadcastID()
			if err != nil {
				return err
			}
			bc := broadcast(id, tocsin.StatusDispatching, "gd-met", t0, "440100", "440300")
			bc.Providers = []tocsin.ProviderProgress{
				{Provider: "cmcc", Name: "China Mobile", Regions: []string{"440100", "440300"}, Status: tocsin.DeliverySending, QueuedAt: t0, UpdatedAt: t0},
				{Provider: "cucc", Name: "China Unicom", Regions: []string{"440100", "440300"}, Status: tocsin.DeliverySending, QueuedAt: t0, UpdatedAt: t0},
			}
			if err := tx.PutBroadcast(bc); err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		mustUpdate(b, db, func(tx tocsin.Tx) error {
			for _, id := range ids {
				bc, err := tx.Broadcast(id)
				if err != nil {
					return err
				}
				bc.Providers[0].Sent++
				if err := tx.PutBroadcast(bc); err != nil {
					return err
				}
			}
			return nil
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perTx), "ns/update")
}

// TestIndexesFollowRecords writes broadcasts back in every way the
// service does (read, changed and put; put afresh; put twice in one
// transaction; deleted; in a transaction that fails and is redone
// without it; each under any spelling of its id) and checks after each
// commit that every index holds
// exactly the entries of the records stored: no stale entry left behind
// by a write that touched only what it changed.
func TestIndexesFollowRecords(t *testing.T) {
	db := mustOpen(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var rngMu sync.Mutex // the writer picks in the Updates, this goroutine between them
	pick := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	scopes := [][]string{{"440100"}, {"440300"}, {"440100", "450100"}, {"110000"}}
	deliveries := []tocsin.DeliveryStatus{tocsin.DeliveryQueued, tocsin.DeliverySending, tocsin.DeliveryDelivered}
	change := func(b *tocsin.Broadcast) {
		switch pick(7) {
		case 0:
			b.Status = tocsin.Statuses[pick(len(tocsin.Statuses))]
		case 1:
			b.Department = []string{"gd-met", "gd-cab", "gx-met"}[pick(3)]
		case 2:
			b.Scope = scopes[pick(len(scopes))]
		case 3:
			b.HeldBy = []string{"", "BC000001"}[pick(2)]
			b.SendAt = t0.Add(time.Duration(pick(3)) * time.Hour)
		case 4:
			until := t0.Add(time.Duration(pick(3)+1) * time.Hour)
			b.SendUntil = []*time.Time{nil, &until}[pick(2)]
		case 5:
			b.Providers = nil
			for _, p := range []string{"cmcc", "cucc"}[:pick(3)] {
				b.Providers = append(b.Providers, tocsin.ProviderProgress{
					Provider: p, Status: deliveries[pick(len(deliveries))], Late: pick(2) == 0,
					QueuedAt: t0.Add(time.Duration(pick(3)) * time.Minute),
				})
			}
		case 6:
			b.Emergency = []*tocsin.Emergency{nil, {Type: "natural_disaster"}}[pick(2)]
		}
	}
	// spell writes an id the ways parseID reads it: BC000001, BC1, BC0000001.
	spell := func(id string) string {
		digits := strings.TrimPrefix(id, "BC")
		return []string{id, "BC" + strings.TrimLeft(digits, "0"), "BC0" + digits}[pick(3)]
	}
	var ids []string
	errFailed := errors.New("this update fails")
	for round := range 300 {
		var wg sync.WaitGroup
		for range 1 + pick(3) { // concurrent Updates share a commit
			failing := pick(5) == 0
			ops := make([]int, 1+pick(4))
			for i := range ops {
				ops[i] = pick(5)
			}
			known := slices.Clone(ids)
			wg.Go(func() {
				err := db.Update(context.Background(), func(tx tocsin.Tx) error {
					for _, op := range ops {
						if len(known) == 0 {
							op = 0
						}
						var err error
						switch op {
						case 0: // filed
							var id string
							if id, err = tx.NewBroadcastID(); err == nil {
								b := broadcast(id, tocsin.StatusPendingReview, "gd-met", t0, "440100")
								change(b)
								err = tx.PutBroadcast(b)
							}
						case 1, 2: // read, changed, written back (once or twice)
							var b *tocsin.Broadcast
							if b, err = tx.Broadcast(spell(known[pick(len(known))])); err == nil {
								for range op {
									change(b)
									if err = tx.PutBroadcast(b); err != nil {
										break
									}
								}
							}
						case 3: // written afresh, unread
							b := broadcast(spell(known[pick(len(known))]), tocsin.StatusApproved, "gd-cab", t0, "440300")
							change(b)
							err = tx.PutBroadcast(b)
						case 4:
							err = tx.DeleteBroadcast(spell(known[pick(len(known))]))
						}
						if err != nil && !tocsin.IsCode(err, tocsin.CodeNotFound) {
							return err
						}
					}
					if failing {
						return errFailed
					}
					return nil
				})
				if err != nil && !errors.Is(err, errFailed) {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		ids = ids[:0]
		want, got := map[string]bool{}, map[string]bool{}
		db.bmu.RLock()
		err := db.bolt.View(func(btx *bolt.Tx) error {
			rt := newTx(btx, db)
			err := btx.Bucket(bucketBroadcasts).ForEach(func(k, v []byte) error {
				b, err := decodeBroadcast(v)
				if err != nil {
					return err
				}
				ids = append(ids, b.ID)
				for _, e := range rt.indexes(b, k) {
					want[string(e.bucket)+"/"+string(e.key)] = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, name := range indexBuckets() {
				err := btx.Bucket(name).ForEach(func(k, _ []byte) error {
					got[string(name)+"/"+string(k)] = true
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		db.bmu.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("round %d: the indexes hold %d entries, the records make %d:\nextra %q\nmissing %q",
				round, len(got), len(want), keysNotIn(got, want), keysNotIn(want, got))
		}
	}
}

// indexBuckets are the buckets tx.indexes writes.
func indexBuckets() [][]byte {
	out := [][]byte{bucketByStatus, bucketByDept, bucketByProvince, bucketSchedule}
	for _, li := range laterIndexes {
		out = append(out, li.bucket)
	}
	return out
}

func keysNotIn(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// A disk that stops answering fails no commit: it holds one. Writable
// says so once a batch has taken stuckAfter, so that readiness does not
// stay green while every filing waits, and clears once it is done.
func TestAStuckCommitIsReported(t *testing.T) {
	db := mustOpen(t)
	db.stuckAfter = 200 * time.Millisecond
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Update(context.Background(), func(tocsin.Tx) error {
			<-release // the batch under way, as a hung fsync holds it
			return nil
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for db.Writable() == nil {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("Writable still nil with a batch under way for 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Writable(); !tocsin.IsCode(err, tocsin.CodeUnavailable) || !strings.Contains(err.Error(), "not answering") {
		t.Errorf("Writable = %v, want unavailable: the disk is not answering", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := db.Writable(); err != nil {
		t.Errorf("Writable after the batch = %v, want nil", err)
	}
}

// Ids are spelled as fmt's "%s%06d" spells them: stored ids, audit
// targets and cursors predate formatSeq.
func TestFormatSeq(t *testing.T) {
	for _, seq := range []uint64{1, 9, 10, 999_999, 1_000_000, 12_345_678, 1<<64 - 1} {
		if got, want := formatSeq(idPrefix, seq), fmt.Sprintf("%s%06d", idPrefix, seq); got != want {
			t.Errorf("formatSeq(%d) = %q, want %q", seq, got, want)
		}
	}
}
