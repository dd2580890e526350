package natsbus_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The accounts file an external cluster includes holds password hashes:
// it is 0600, whatever mode a file already there had, and a provider
// stored under a reserved id (before ids were checked) gets no login in it.
func TestAccountsFileIs0600(t *testing.T) {
	ctx := context.Background()
	svc := testkit.MustService(t, testkit.MustStore(t, nil), testkit.NewClock(time.Now()))
	err := svc.Store.Update(ctx, func(tx tocsin.Tx) error {
		for _, id := range []string{"cmcc", "tocsin"} {
			p := &tocsin.Provider{ID: id, Name: id, Regions: []string{"440000"}, NATSUser: id, NATSPasswordHash: "$2a$04$hash-of-" + id}
			if err := tx.PutProvider(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, existing := range []os.FileMode{0, 0o644} {
		t.Run(existing.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "accounts", "accounts.conf")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if existing != 0 {
				if err := os.WriteFile(path, []byte("accounts {}\n"), existing); err != nil {
					t.Fatal(err)
				}
			}
			r := &natsbus.Registry{Service: svc, AccountsFile: path, CoordinatorPasswordHash: "$2a$10$coordinator"}
			if err := r.SyncUsers(ctx); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("accounts file is %v, want 0600", info.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			if !strings.Contains(string(data), "hash-of-cmcc") || strings.Contains(string(data), "hash-of-tocsin") {
				t.Errorf("accounts file:\n%s", data)
			}
		})
	}
}
