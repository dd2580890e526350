package natsbus

import (
	"github.com/tocsin-dev/tocsin/internal/atomicfile"

	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Credentials are what a provider needs to connect; the password is shown
// once, at registration, and only its hash is kept.
type Credentials struct {
	Provider        string `json:"provider"`
	URL             string `json:"url"`
	User            string `json:"user"`
	Password        string `json:"password"`
	Account         string `json:"account"`
	Stream          string `json:"stream"`
	Consumer        string `json:"consumer"`
	DispatchSubject string `json:"dispatch_subject"`
	ReceiptSubject  string `json:"receipt_subject"`
	ReceiptStream   string `json:"receipt_stream"`
}

// Registry registers providers: the store record, the NATS login (in the
// embedded server's configuration) and the durable consumer.
type Registry struct {
	Service *tocsin.Service
	Bus     *Bus
	// Embedded is nil with an external NATS.
	Embedded *Embedded
	// AccountsFile, with an external NATS, is where the accounts block is
	// written for the cluster's nodes to include and reload;
	// CoordinatorPasswordHash is the coordinator's login in it.
	AccountsFile            string
	CoordinatorPasswordHash string
	// URL is the client URL given to providers.
	URL string
}

// Register creates or re-keys a provider and returns fresh credentials.
func (r *Registry) Register(ctx context.Context, p tocsin.Provider) (Credentials, error) {
	password := RandomSecret()
	// The password is 32 random bytes, beyond any guessing; a high bcrypt
	// cost would only slow every provider connection.
	hash, err := HashPassword(password, bcrypt.MinCost)
	if err != nil {
		return Credentials{}, err
	}
	p.NATSUser, p.NATSPasswordHash = p.ID, hash
	p.CreatedAt = r.Service.Clock.Now()
	if err := r.Service.PutProvider(ctx, p); err != nil {
		return Credentials{}, err
	}
	if err := r.SyncUsers(ctx); err != nil {
		return Credentials{}, err
	}
	if err := r.Bus.EnsureProviderConsumer(ctx, p.ID); err != nil {
		return Credentials{}, tocsin.Errorf(tocsin.CodeUnavailable,
			"provider %s is registered, but its consumer could not be created yet (NATS unavailable); it will be at the next start: %v", p.ID, err)
	}
	return Credentials{
		Provider: p.ID, URL: r.URL, User: p.ID, Password: password,
		Account: ProviderAccount(p.ID), Stream: DispatchStream, Consumer: p.ID,
		DispatchSubject: DispatchSubject(p.ID), ReceiptSubject: ReceiptSubject(p.ID), ReceiptStream: ReceiptStream,
	}, nil
}

// SyncUsers brings the provider logins in line with the store: the
// embedded server is reconfigured; for an external cluster the accounts
// file its nodes include is rewritten.
func (r *Registry) SyncUsers(ctx context.Context) error {
	users, err := ProviderUsers(ctx, r.Service.Store)
	if err != nil {
		return err
	}
	switch {
	case r.Embedded != nil:
		return r.Embedded.SetProviders(users)
	case r.AccountsFile != "":
		cfg := ServerConfig{CoordinatorPasswordHash: r.CoordinatorPasswordHash, Providers: users}
		// 0600: it holds the coordinator's and every provider's password
		// hash. The nodes that include it run as the same user (or root).
		if err := atomicfile.Write(r.AccountsFile, []byte(cfg.Accounts()), 0o600); err != nil {
			return fmt.Errorf("nats: accounts file: %w", err)
		}
	}
	return nil
}

// ProviderUsers reads every provider's NATS login from the store.
func ProviderUsers(ctx context.Context, store tocsin.Store) ([]ProviderUser, error) {
	var users []ProviderUser
	err := store.View(ctx, func(tx tocsin.ReadTx) error {
		ps, err := tx.Providers()
		for _, p := range ps {
			// A provider stored, before ids were checked, under a name
			// the coordinator keeps for itself (tocsin) gets no login:
			// it would break the configuration for everyone.
			if p.NATSPasswordHash != "" && tocsin.CheckID("provider", p.ID) == nil {
				users = append(users, ProviderUser{ID: p.ID, PasswordHash: p.NATSPasswordHash})
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provider logins: %w", err)
	}
	return users, nil
}
