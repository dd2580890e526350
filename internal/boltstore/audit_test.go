package boltstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestCompactAuditRoundTrip(t *testing.T) {
	state := sum([]byte("record"))
	prev := sum([]byte("previous"))
	for _, tc := range []struct {
		name string
		e    tocsin.AuditEntry
		prev string
	}{
		{"first entry, bare", tocsin.AuditEntry{At: t0, Action: "organisation_saved", Target: "gd-met"}, ""},
		{"history event", tocsin.AuditEntry{At: t0, Action: "released", Target: "BC000001", After: "dispatching",
			Note: "dispatched to 2 provider(s)", Params: map[string]any{"providers": 2.0}, StateHash: state, Event: true}, prev},
		{"receipt", tocsin.AuditEntry{At: t0.Add(time.Nanosecond), Action: "receipt", Org: "cmcc", By: "provider:cmcc",
			Source: "10.0.0.7:5123", Target: "BC000001", Before: "queued", After: "sending",
			Note: "sending: 1000 recipients, 1000 sent, 990 delivered, 10 failed", StateHash: state}, prev},
		{"long note", tocsin.AuditEntry{At: t0, Action: "dispatch_published", Target: "BC000002", Note: strings.Repeat("台风", 2000)}, prev},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, hash, err := encodeAudit(42, tc.prev, tc.e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAudit(42, tc.prev, value)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.e
			want.Seq, want.Prev, want.Hash = 42, tc.prev, hash
			if !got.At.Equal(want.At) {
				t.Errorf("at %v, want %v", got.At, want.At)
			}
			got.At, want.At = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
			}
			if storedHash(value) != hash {
				t.Errorf("stored hash %s, want %s", storedHash(value), hash)
			}
			// Every byte is covered: flip one and the entry no longer checks.
			for i := range value {
				tampered := bytes.Clone(value)
				tampered[i] ^= 0x01
				if _, err := decodeAudit(42, tc.prev, tampered); err == nil {
					t.Fatalf("byte %d flipped: still decodes and checks", i)
				}
			}
			// So are its place in the trail and its link to the one before.
			if _, err := decodeAudit(43, tc.prev, value); err == nil {
				t.Error("checks at another sequence")
			}
			if _, err := decodeAudit(42, sum([]byte("other")), value); err == nil {
				t.Error("checks after another entry")
			}
		})
	}
}

func FuzzDecodeCompactAudit(f *testing.F) {
	value, _, err := encodeAudit(1, "", tocsin.AuditEntry{At: t0, Action: "filed", Target: "BC000001",
		Params: map[string]any{"x": 1.0}, StateHash: sum(nil), Event: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(value)
	f.Add([]byte{auditCompact})
	f.Fuzz(func(t *testing.T, value []byte) {
		e, err := decodeCompactBody(value)
		if err != nil {
			return
		}
		// Whatever decodes encodes again to the same body.
		again, _, err := encodeAudit(1, "", e)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", e, err)
		}
		if e2, err := decodeCompactBody(again); err != nil || !e2.At.Equal(e.At) || e2.Note != e.Note || e2.Event != e.Event {
			t.Fatalf("re-decoded %+v, %v; want %+v", e2, err, e)
		}
	})
}

// A broadcast's history is its audit entries': written once, read back
// with the record, not kept in it.
func TestHistoryLivesInTheTrail(t *testing.T) {
	db := mustOpen(t)
	events := []tocsin.Event{
		{At: t0, Action: "filed", Org: "gd-met", By: "clerk"},
		{At: t0.Add(time.Second), Action: "released", To: tocsin.StatusDispatching, Note: "dispatched to 2 provider(s)",
			Params: map[string]any{tocsin.ParamProviders: 2.0}},
	}
	var id string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		if id, err = tx.NewBroadcastID(); err != nil {
			return err
		}
		b := broadcast(id, tocsin.StatusDispatching, "gd-met", t0, "440100")
		b.History = events
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		// Read back before its entries are written: the transaction's own.
		if got, err := tx.Broadcast(id); err != nil || len(got.History) != 2 {
			t.Errorf("in the writing transaction: %v, %v", got, err)
		}
		for _, e := range events {
			err := tx.Audit(tocsin.AuditEntry{At: e.At, Action: e.Action, Org: e.Org, By: e.By, Target: id,
				Before: string(e.From), After: string(e.To), Note: e.Note, Params: e.Params, Event: true})
			if err != nil {
				return err
			}
		}
		// Not an event: in the timeline, not in the history.
		return tx.Audit(tocsin.AuditEntry{At: t0.Add(2 * time.Second), Action: tocsin.AuditDispatchPublished, Target: id})
	})
	mustView(t, db, func(tx tocsin.ReadTx) error {
		b, err := tx.Broadcast(id)
		if err != nil {
			return err
		}
		if len(b.History) != len(events) {
			t.Fatalf("history %+v, want %+v", b.History, events)
		}
		for i, e := range b.History {
			if !e.At.Equal(events[i].At) || e.Action != events[i].Action || e.To != events[i].To || !reflect.DeepEqual(e.Params, events[i].Params) {
				t.Errorf("event %d: %+v, want %+v", i, e, events[i])
			}
		}
		page, err := tx.Broadcasts(tocsin.Query{})
		if err != nil || len(page.Broadcasts) != 1 || len(page.Broadcasts[0].History) != 2 {
			t.Errorf("listed: %+v, %v", page, err)
		}
		tl, err := tx.Timeline(id)
		if err != nil || len(tl) != 3 {
			t.Fatalf("timeline: %d entries, %v", len(tl), err)
		}
		// One transaction wrote the record once: the hash is stored once
		// and every entry of the transaction states it.
		for _, e := range tl {
			if e.StateHash != tl[0].StateHash || len(e.StateHash) != 64 {
				t.Errorf("%s: state hash %q, want %q", e.Action, e.StateHash, tl[0].StateHash)
			}
		}
		return nil
	})
	db.bmu.RLock()
	err := db.bolt.View(func(btx *bolt.Tx) error {
		seq, _ := parseID(id)
		if record := btx.Bucket(bucketBroadcasts).Get(u64(seq)); bytes.Contains(record, []byte("dispatched to")) {
			t.Errorf("the record keeps its history: %s", record)
		}
		return nil
	})
	db.bmu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyAudit(db.Path()); err != nil || rep.Entries != 3 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}

// A store from before the compact trail: records with their history in
// them and entries in the JSON form. It reads as it did, new entries chain
// on to the old ones, and the whole trail verifies; whatever spelling of
// its id the change reads it by (a provider's receipt may say BC1), the
// record keeps its history.
func TestStoreOfTheFirstForm(t *testing.T) {
	for _, spelling := range []string{"BC000001", "BC1"} {
		t.Run(spelling, func(t *testing.T) { testStoreOfTheFirstForm(t, spelling) })
	}
}

func testStoreOfTheFirstForm(t *testing.T, spelling string) {
	db := mustOpen(t)
	history := []tocsin.Event{{At: t0, Action: "filed", Org: "gd-met", By: "clerk", To: tocsin.StatusPendingReview}}
	b := broadcast("BC000001", tocsin.StatusPendingReview, "gd-met", t0.Add(240*time.Hour), "440100")
	b.History = history
	db.bmu.RLock()
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		record, err := json.Marshal(b)
		if err != nil {
			return err
		}
		if _, err := btx.Bucket(bucketBroadcasts).NextSequence(); err != nil {
			return err
		}
		if err := btx.Bucket(bucketBroadcasts).Put(u64(1), record); err != nil {
			return err
		}
		// The entry as the first form wrote it.
		seq, _ := btx.Bucket(bucketAudit).NextSequence()
		body, _ := json.Marshal(tocsin.AuditEntry{Seq: seq, At: t0, Action: "filed", Org: "gd-met", By: "clerk",
			Target: "BC000001", After: "pending_review", StateHash: sum(record)})
		hash := sum(body)
		if err := btx.Bucket(bucketAudit).Put(u64(seq), append([]byte(hash+"\n"), body...)); err != nil {
			return err
		}
		if err := btx.Bucket(bucketAuditByTarget).Put(compositeKey("BC000001", u64(seq)), nil); err != nil {
			return err
		}
		return btx.Bucket(bucketMeta).Put(auditHeadKey, []byte(hash))
	})
	db.bmu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	// Approve it the way the domain does: read, append, write, audit.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		b, err := tx.Broadcast(spelling)
		if err != nil {
			return err
		}
		if len(b.History) != 1 {
			t.Errorf("stored history: %+v", b.History)
		}
		b.Status = tocsin.StatusApproved
		b.History = append(b.History, tocsin.Event{At: t0.Add(time.Hour), Action: "approved", Org: "gd-cab", From: tocsin.StatusPendingReview, To: tocsin.StatusApproved})
		if err := tx.PutBroadcast(b); err != nil {
			return err
		}
		return tx.Audit(tocsin.AuditEntry{At: t0.Add(time.Hour), Action: "approved", Org: "gd-cab", Target: "BC000001",
			Before: "pending_review", After: "approved", Event: true})
	})
	mustView(t, db, func(tx tocsin.ReadTx) error {
		b, err := tx.Broadcast("BC000001")
		if err != nil || len(b.History) != 2 || b.History[1].Action != "approved" {
			t.Errorf("history after the change: %+v, %v", b, err)
		}
		tl, err := tx.Timeline("BC000001")
		if err != nil || len(tl) != 2 || tl[1].Prev != tl[0].Hash {
			t.Errorf("timeline: %+v, %v", tl, err)
		}
		return nil
	})
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyAudit(path)
	if err != nil || rep.Entries != 2 || rep.Broadcasts != 1 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// The index of entries by target is what a broadcast's history is read
// through, so verification covers it: an event hidden from a broadcast, or
// lent to another, breaks the trail.
func TestVerifyCoversTheTargetIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(idx *bolt.Bucket) error
		reason string
	}{
		{"an event hidden", func(idx *bolt.Bucket) error {
			return idx.Delete(compositeKey("BC000001", u64(1)))
		}, "missing from the index"},
		{"an event lent to another broadcast", func(idx *bolt.Bucket) error {
			return idx.Put(compositeKey("BC000002", u64(1)), nil)
		}, "has 3 keys for 2 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpen(t)
			mustUpdate(t, db, func(tx tocsin.Tx) error {
				for _, id := range []string{"BC000001", "BC000002"} {
					if _, err := tx.NewBroadcastID(); err != nil {
						return err
					}
					if err := tx.PutBroadcast(broadcast(id, tocsin.StatusPendingReview, "gd-met", t0, "440100")); err != nil {
						return err
					}
					if err := tx.Audit(tocsin.AuditEntry{At: t0, Action: "filed", Target: id, Event: true}); err != nil {
						return err
					}
				}
				return nil
			})
			db.bmu.RLock()
			err := db.bolt.Update(func(btx *bolt.Tx) error { return tc.tamper(btx.Bucket(bucketAuditByTarget)) })
			db.bmu.RUnlock()
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = VerifyAudit(db.Path())
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("verify: %v, want %q", err, tc.reason)
			}
		})
	}
}

// An audit entry states the record its transaction wrote whatever
// spelling of the id names its target, and is filed under the id as
// stored: BC1 and BC000001 are one record, and one trail.
func TestAuditStatesTheRecordWhateverTheSpelling(t *testing.T) {
	db := mustOpen(t)
	var id string
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		var err error
		if id, err = tx.NewBroadcastID(); err != nil {
			return err
		}
		if err := tx.PutBroadcast(broadcast(id, tocsin.StatusPendingReview, "gd-met", t0, "440100")); err != nil {
			return err
		}
		return tx.Audit(tocsin.AuditEntry{At: t0, Action: tocsin.AuditDispatchPublished, Target: "BC1"})
	})
	var record []byte
	db.bmu.RLock()
	err := db.bolt.View(func(btx *bolt.Tx) error {
		seq, _ := parseID(id)
		record = bytes.Clone(btx.Bucket(bucketBroadcasts).Get(u64(seq)))
		return nil
	})
	db.bmu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		tl, err := tx.Timeline("BC1")
		if err != nil || len(tl) != 1 {
			t.Fatalf("timeline: %+v, %v", tl, err)
		}
		if tl[0].StateHash != sum(record) {
			t.Errorf("state hash %q, want the record's %q", tl[0].StateHash, sum(record))
		}
		if tl[0].Target != id {
			t.Errorf("target %q, want it filed as %s", tl[0].Target, id)
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyAudit(db.Path()); err != nil || rep.Entries != 1 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}
