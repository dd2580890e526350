package boltstore

import (
	"context"
	"errors"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The cached credentials and organisations never show a reader another
// snapshot's: a revoked token is refused by the next read, a View open
// across a write keeps its own, and a write that rolled back leaves
// nothing behind.
func TestRecordCachesFollowWrites(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		if err := tx.PutOrganisation(&tocsin.Organisation{ID: "gd-met", Name: "Guangdong Meteorological Service", Role: tocsin.RoleDepartment}); err != nil {
			return err
		}
		return tx.PutCredential(&tocsin.Credential{ID: "c1", Kind: tocsin.CredentialService, Org: "gd-met", Subject: "alerts"})
	})
	// read is what Authenticate reads: the credential (or "gone") and its
	// organisation's name.
	read := func(view func(func(tocsin.ReadTx) error) error) (string, string) {
		t.Helper()
		var subject, name string
		if err := view(func(tx tocsin.ReadTx) error {
			c, err := tx.Credential("c1")
			switch {
			case tocsin.IsCode(err, tocsin.CodeNotFound):
				subject = "gone"
			case err != nil:
				return err
			default:
				subject = c.Subject
			}
			o, err := tx.Organisation("gd-met")
			if err != nil {
				return err
			}
			name = o.Name
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return subject, name
	}
	view := func(fn func(tocsin.ReadTx) error) error { return db.View(ctx, fn) }
	want := func(what, subject, name string) {
		t.Helper()
		if s, n := read(view); s != subject || n != name {
			t.Fatalf("%s: credential %q, organisation %q; want %q, %q", what, s, n, subject, name)
		}
	}
	want("first read", "alerts", "Guangdong Meteorological Service")
	want("from the caches", "alerts", "Guangdong Meteorological Service")

	// Callers may change what they got.
	mustView(t, db, func(tx tocsin.ReadTx) error {
		c, err := tx.Credential("c1")
		if err != nil {
			return err
		}
		c.Subject = "changed"
		o, err := tx.Organisation("gd-met")
		o.Name = "changed"
		return err
	})
	want("after callers changed their copies", "alerts", "Guangdong Meteorological Service")

	// A write that rolls back leaves the caches as they were.
	rollback := errors.New("roll back")
	err := db.Update(ctx, func(tx tocsin.Tx) error {
		if err := tx.PutCredential(&tocsin.Credential{ID: "c1", Kind: tocsin.CredentialService, Org: "gd-met", Subject: "uncommitted"}); err != nil {
			return err
		}
		if _, err := tx.Credential("c1"); err != nil { // a writer reads its own write
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("update: %v", err)
	}
	want("after a rolled-back write", "alerts", "Guangdong Meteorological Service")
	// An unrelated commit takes the id that write would have had.
	mustUpdate(t, db, func(tx tocsin.Tx) error { return tx.Audit(tocsin.AuditEntry{Action: "noted", Target: "x"}) })
	want("after the next commit", "alerts", "Guangdong Meteorological Service")

	// A View open across a revocation and a rename keeps its snapshot, and
	// what it read does not outlive it.
	var older [2]string
	started, proceed, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		older[0], older[1] = read(func(fn func(tocsin.ReadTx) error) error {
			return db.View(ctx, func(tx tocsin.ReadTx) error {
				close(started)
				<-proceed
				return fn(tx)
			})
		})
	}()
	<-started
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		if err := tx.DeleteCredential("c1"); err != nil {
			return err
		}
		return tx.PutOrganisation(&tocsin.Organisation{ID: "gd-met", Name: "广东省气象局", Role: tocsin.RoleDepartment})
	})
	close(proceed)
	<-done
	if older != [2]string{"alerts", "Guangdong Meteorological Service"} {
		t.Errorf("a View begun before the revocation read %v", older)
	}
	want("after the revocation", "gone", "广东省气象局")
	want("after the revocation, again", "gone", "广东省气象局")
}
