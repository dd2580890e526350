package testkit

import (
	"context"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Timeline reads the audit entries about target straight from the store,
// oldest first: for targets no actor's Timeline shows (a provider's
// refused receipts), and for tests that look past the rules.
func Timeline(tb testing.TB, store tocsin.Store, target string) []tocsin.AuditEntry {
	tb.Helper()
	var out []tocsin.AuditEntry
	err := store.View(context.Background(), func(tx tocsin.ReadTx) error {
		var err error
		out, err = tx.Timeline(target)
		return err
	})
	if err != nil {
		tb.Fatalf("timeline of %s: %v", target, err)
	}
	return out
}
