package boltstore

import (
	"context"
	"slices"
	"strings"
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
// EachCovering, which shares the cached list, shows the next reader.
func TestProvidersAreCopiesEachCoveringIsNot(t *testing.T) {
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
		return tx.EachCovering([]string{"440100"}, func(p *tocsin.Provider, regions []string) error {
			if p.Name != "China Mobile" || p.Regions[0] != "440100" {
				t.Errorf("the shared list was changed through a copy: %+v", p)
			}
			return nil
		})
	})
}

// Who covers a scope is remembered with the cached list, so it must be
// judged again once a provider is written, and a writer sees its own.
func TestCoverageFollowsProviderWrites(t *testing.T) {
	db := mustOpen(t)
	covering := func(tx tocsin.ReadTx, scope ...string) []string {
		var out []string
		err := tx.EachCovering(scope, func(p *tocsin.Provider, regions []string) error {
			out = append(out, p.ID+":"+strings.Join(regions, ","))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	view := func(scope ...string) []string {
		var out []string
		mustView(t, db, func(tx tocsin.ReadTx) error { out = covering(tx, scope...); return nil })
		return out
	}
	put := func(tx tocsin.Tx, id string, regions ...string) error {
		return tx.PutProvider(&tocsin.Provider{ID: id, Name: id, Regions: regions})
	}
	mustUpdate(t, db, func(tx tocsin.Tx) error { return put(tx, "cmcc", "440000") })
	for _, tc := range []struct {
		step  string
		write func(tocsin.Tx) error
		scope []string
		want  []string
	}{
		{"first read", nil, []string{"440100", "450000"}, []string{"cmcc:440100"}},
		{"from the cache", nil, []string{"440100", "450000"}, []string{"cmcc:440100"}},
		{"a provider added", func(tx tocsin.Tx) error { return put(tx, "gx", "450100") }, []string{"440100", "450000"}, []string{"cmcc:440100", "gx:450100"}},
		{"a provider's regions changed", func(tx tocsin.Tx) error { return put(tx, "cmcc", "440300") }, []string{"440100", "450000"}, []string{"gx:450100"}},
		{"another scope", nil, []string{"440300"}, []string{"cmcc:440300"}},
	} {
		if tc.write != nil {
			mustUpdate(t, db, func(tx tocsin.Tx) error {
				if err := tc.write(tx); err != nil {
					return err
				}
				if got := covering(tx, tc.scope...); !slices.Equal(got, tc.want) {
					t.Errorf("%s: the writer sees %v, want %v", tc.step, got, tc.want)
				}
				return nil
			})
		}
		for range 2 {
			if got := view(tc.scope...); !slices.Equal(got, tc.want) {
				t.Errorf("%s: covering %v = %v, want %v", tc.step, tc.scope, got, tc.want)
			}
		}
	}
}
