package boltstore

import (
	"context"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The cached provider list never shows a reader another snapshot's
// providers: not a newer one to an older View, not an older one after a
// write, and a writing transaction reads its own writes.
func TestProviderListCacheFollowsWrites(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	names := func(fn func(func(tocsin.ReadTx) error) error) []string {
		t.Helper()
		var out []string
		if err := fn(func(tx tocsin.ReadTx) error {
			ps, err := tx.Providers()
			for _, p := range ps {
				out = append(out, p.ID+"="+p.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	view := func(fn func(tocsin.ReadTx) error) error { return db.View(ctx, fn) }
	put := func(id, name string) {
		t.Helper()
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			return tx.PutProvider(&tocsin.Provider{ID: id, Name: name, Regions: []string{"440000"}})
		})
	}
	put("cmcc", "China Mobile")
	if got := names(view); len(got) != 1 || got[0] != "cmcc=China Mobile" {
		t.Fatalf("after the first write: %v", got)
	}
	_ = names(view) // served from the cache now
	put("cmcc", "中国移动")
	if got := names(view); len(got) != 1 || got[0] != "cmcc=中国移动" {
		t.Fatalf("after a rename: %v", got)
	}
	// An older snapshot, open across a write, keeps its own providers.
	var older []string
	started, proceed, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		older = names(func(fn func(tocsin.ReadTx) error) error {
			return db.View(ctx, func(tx tocsin.ReadTx) error {
				close(started)
				<-proceed
				return fn(tx)
			})
		})
	}()
	<-started
	put("cucc", "China Unicom")
	close(proceed)
	<-done
	if len(older) != 1 {
		t.Errorf("a View begun before cucc was written sees %v", older)
	}
	if got := names(view); len(got) != 2 {
		t.Errorf("after adding cucc: %v", got)
	}
	// A writer sees its own writes, and callers may change what they got.
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		ps, err := tx.Providers()
		if err != nil {
			return err
		}
		ps[0].Regions[0] = "999999" // must not reach the cache
		if err := tx.PutProvider(&tocsin.Provider{ID: "ctcc", Name: "China Telecom"}); err != nil {
			return err
		}
		if ps, _ = tx.Providers(); len(ps) != 3 {
			t.Errorf("the writer sees %d providers after its own write, want 3", len(ps))
		}
		return nil
	})
	mustView(t, db, func(tx tocsin.ReadTx) error {
		ps, err := tx.Providers()
		for _, p := range ps {
			if p.ID == "cmcc" && p.Regions[0] != "440000" {
				t.Errorf("a caller's change reached the store's cache: %v", p.Regions)
			}
		}
		return err
	})
}

// Providers hands out copies: a caller changing one does not change what
// EachProvider, which shares the cached list, shows the next reader.
func TestProvidersAreCopiesEachProviderIsNot(t *testing.T) {
	db := mustOpen(t)
	mustUpdate(t, db, func(tx tocsin.Tx) error {
		return tx.PutProvider(&tocsin.Provider{ID: "cmcc", Name: "China Mobile", Regions: []string{"440100"}})
	})
	for range 2 { // the second from the cache
		mustView(t, db, func(tx tocsin.ReadTx) error {
			ps, err := tx.Providers()
			if err != nil || len(ps) != 1 {
				t.Fatalf("providers: %v, %v", ps, err)
			}
			ps[0].Name, ps[0].Regions[0] = "changed", "000000"
			return nil
		})
	}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		return tx.EachProvider(func(p *tocsin.Provider) error {
			if p.Name != "China Mobile" || p.Regions[0] != "440100" {
				t.Errorf("the shared list was changed through a copy: %+v", p)
			}
			return nil
		})
	})
}
