package boltstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// enqueueOne puts one message in the outbox and returns its sequence.
func enqueueOne(tb testing.TB, db *DB) uint64 {
	tb.Helper()
	mustUpdate(tb, db, func(tx tocsin.Tx) error {
		return tx.Enqueue(tocsin.OutboxMessage{Provider: "cmcc", MsgID: "m"})
	})
	var seq uint64
	mustView(tb, db, func(tx tocsin.ReadTx) error {
		msgs, err := tx.Outbox(10)
		seq = msgs[len(msgs)-1].Seq
		return err
	})
	return seq
}

func outboxLen(tb testing.TB, db *DB) int {
	tb.Helper()
	n := 0
	mustView(tb, db, func(tx tocsin.ReadTx) error {
		var err error
		n, err = tx.OutboxLen()
		return err
	})
	return n
}

func TestUpdateLaterRidesWithTheNextCommit(t *testing.T) {
	db := mustOpen(t)
	seq := enqueueOne(t, db)
	done := make(chan error, 1)
	db.UpdateLater(time.Hour, func(tx tocsin.Tx) error { return tx.Dequeue(seq) }, func(err error) { done <- err })
	select {
	case err := <-done:
		t.Fatalf("committed before any other commit: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	mustUpdate(t, db, func(tocsin.Tx) error { return nil }) // someone else's commit
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, db); n != 0 {
		t.Fatalf("outbox has %d after the deferred dequeue", n)
	}
}

func TestUpdateLaterGoesAloneAfterItsWait(t *testing.T) {
	db := mustOpen(t)
	seq := enqueueOne(t, db)
	done := make(chan error, 1)
	db.UpdateLater(10*time.Millisecond, func(tx tocsin.Tx) error { return tx.Dequeue(seq) }, func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never committed on its own")
	}
	if n := outboxLen(t, db); n != 0 {
		t.Fatalf("outbox has %d", n)
	}
}

func TestUpdateLaterCommittedByClose(t *testing.T) {
	db := mustOpen(t)
	seq := enqueueOne(t, db)
	done := make(chan error, 1)
	db.UpdateLater(time.Hour, func(tx tocsin.Tx) error { return tx.Dequeue(seq) }, func(err error) { done <- err })
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, db.regions, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if n := outboxLen(t, db2); n != 0 {
		t.Fatalf("outbox has %d after reopening", n)
	}
}

func TestUpdateLaterFailureLeavesOthersAlone(t *testing.T) {
	db := mustOpen(t)
	done := make(chan error, 1)
	boom := errors.New("boom")
	db.UpdateLater(time.Hour, func(tocsin.Tx) error { return boom }, func(err error) { done <- err })
	if err := db.Update(context.Background(), func(tx tocsin.Tx) error {
		return tx.Enqueue(tocsin.OutboxMessage{Provider: "cmcc", MsgID: "kept"})
	}); err != nil {
		t.Fatalf("a neighbour's failure failed this update: %v", err)
	}
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("deferred update err = %v, want boom", err)
	}
	if n := outboxLen(t, db); n != 1 {
		t.Fatalf("outbox has %d, want 1", n)
	}
}
