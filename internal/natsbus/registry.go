package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Credentials are what a provider needs to connect. Creds, the text of a
// standard NATS credentials file (its user JWT and seed), is shown once,
// at registration or rotation; only the user's public key is kept.
type Credentials struct {
	Provider        string     `json:"provider"`
	URL             string     `json:"url"`
	User            string     `json:"user"`
	UserKey         string     `json:"user_key"`
	Account         string     `json:"account"`
	AccountName     string     `json:"account_name"`
	Creds           string     `json:"creds"`
	Stream          string     `json:"stream"`
	Consumer        string     `json:"consumer"`
	DispatchSubject string     `json:"dispatch_subject"`
	ReceiptSubject  string     `json:"receipt_subject"`
	ReceiptStream   string     `json:"receipt_stream"`
	Limits          LimitsView `json:"limits"`
}

// LimitsView shows a provider the NATS limits in its account JWT.
type LimitsView struct {
	MaxPayload       int `json:"max_payload"`
	MaxConnections   int `json:"max_connections"`
	MaxSubscriptions int `json:"max_subscriptions"`
}

// Registry registers providers: the store record, the provider's NATS
// account and user (signed with the coordinator's keys and pushed to the
// servers' resolvers) and its durable consumer.
type Registry struct {
	Service  *tocsin.Service
	Bus      *Bus
	Keys     *Keys
	Resolver *Resolver
	// URL is the client URL given to providers.
	URL string
	Log *slog.Logger

	mu sync.Mutex // serialises changes to provider accounts
}

// credentials are the credentials of provider p with user u.
func (r *Registry) credentials(p *tocsin.Provider, u UserCreds) Credentials {
	return Credentials{
		Provider: p.ID, URL: r.URL, User: p.ID, UserKey: u.Key, Account: p.NATSAccount,
		AccountName: ProviderAccountName(p.ID), Creds: u.Text, Stream: DispatchStream, Consumer: p.ID,
		DispatchSubject: DispatchSubject(p.ID), ReceiptSubject: ReceiptSubject(p.ID), ReceiptStream: ReceiptStream,
		Limits: LimitsView{MaxPayload: r.Bus.limits().MaxPayload, MaxConnections: r.Bus.limits().MaxConnections,
			MaxSubscriptions: r.Bus.limits().MaxSubscriptions},
	}
}

// Register creates a provider, or updates one and issues it new
// credentials (revoking the old), and returns them.
func (r *Registry) Register(ctx context.Context, p tocsin.Provider) (Credentials, error) {
	if err := tocsin.ValidateProvider(&p, r.Service.Regions); err != nil {
		return Credentials{}, err
	}
	u, err := r.registerLocked(ctx, &p)
	if err != nil {
		return Credentials{}, err
	}
	// Outside the lock: making the consumer can wait on JetStream for
	// seconds, and a revocation (core NATS only) must not wait behind it.
	if err := r.Bus.EnsureProviderConsumer(ctx, p.ID); err != nil {
		return Credentials{}, tocsin.Errorf(tocsin.CodeUnavailable,
			"provider %s is registered, but its consumer could not be created yet (NATS unavailable); it will be at the next start: %v", p.ID, err)
	}
	return r.credentials(&p, u), nil
}

// registerLocked issues p's credentials and stores it, holding the
// registry's lock.
func (r *Registry) registerLocked(ctx context.Context, p *tocsin.Provider) (UserCreds, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, err := r.stored(ctx, p.ID)
	if err != nil && !tocsin.IsCode(err, tocsin.CodeNotFound) {
		return UserCreds{}, err
	}
	if old != nil {
		p.NATSAccount, p.NATSAccountJWT, p.NATSUserKey = old.NATSAccount, old.NATSAccountJWT, old.NATSUserKey
	}
	u, err := r.reissue(ctx, p)
	if err != nil {
		return UserCreds{}, err
	}
	p.CreatedAt = r.Service.Clock.Now()
	if err := r.Service.PutProvider(ctx, *p); err != nil {
		return UserCreds{}, err
	}
	return u, nil
}

// reissue gives p a new user, revoking its current one, signs its account
// JWT (making the account if it has none) and pushes it. p's NATS fields
// are updated; the caller stores them.
func (r *Registry) reissue(ctx context.Context, p *tocsin.Provider) (UserCreds, error) {
	acct, err := accountOf(p)
	if err != nil {
		return UserCreds{}, err
	}
	if p.NATSUserKey != "" {
		acct.Revoked[p.NATSUserKey] = time.Now().Unix()
	}
	u, err := r.Keys.ProviderUser(acct, r.Bus.limits())
	if err != nil {
		return UserCreds{}, err
	}
	if err := r.pushAccount(ctx, p, acct); err != nil {
		return UserCreds{}, err
	}
	p.NATSUser, p.NATSPasswordHash, p.NATSUserKey = p.ID, "", u.Key
	return u, nil
}

// pushAccount signs acct's JWT, pushes it and sets it on p.
func (r *Registry) pushAccount(ctx context.Context, p *tocsin.Provider, acct ProviderAccount) error {
	token, err := r.Keys.ProviderAccountJWT(acct, r.Bus.limits())
	if err != nil {
		return err
	}
	if err := r.Resolver.Push(ctx, token); err != nil {
		return tocsin.Errorf(tocsin.CodeUnavailable, "provider %s: its NATS account could not be pushed to the servers: %v", p.ID, err)
	}
	p.NATSAccount, p.NATSAccountJWT = acct.Account, token
	return nil
}

// accountOf is p's account as its stored JWT has it, or a new one.
func accountOf(p *tocsin.Provider) (ProviderAccount, error) {
	acct := ProviderAccount{ID: p.ID, Account: p.NATSAccount, Revoked: map[string]int64{}}
	if acct.Account == "" {
		key, err := NewProviderAccountKey()
		if err != nil {
			return acct, err
		}
		acct.Account = key
		return acct, nil
	}
	if p.NATSAccountJWT != "" {
		ac, err := jwt.DecodeAccountClaims(p.NATSAccountJWT)
		if err != nil {
			return acct, fmt.Errorf("nats: provider %s: stored account JWT: %w", p.ID, err)
		}
		for user, at := range ac.Revocations {
			acct.Revoked[user] = at
		}
	}
	return acct, nil
}

// Rotate issues provider id new credentials and revokes the old ones.
func (r *Registry) Rotate(ctx context.Context, id string) (Registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var u UserCreds
	p, err := r.change(ctx, id, "NATS credentials rotated", func(p *tocsin.Provider) error {
		var err error
		u, err = r.reissue(ctx, p)
		return err
	})
	if err != nil {
		return Registration{}, err
	}
	return Registration{Credentials: r.credentials(p, u), Name: p.Name, Regions: p.Regions}, nil
}

// Revoke revokes provider id's NATS user: its connections are closed at
// once on every server, and it cannot connect until Rotate issues new
// credentials.
func (r *Registry) Revoke(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.change(ctx, id, "NATS credentials revoked", func(p *tocsin.Provider) error {
		acct, err := accountOf(p)
		if err != nil {
			return err
		}
		if p.NATSUserKey != "" {
			acct.Revoked[p.NATSUserKey] = time.Now().Unix()
		}
		if err := r.pushAccount(ctx, p, acct); err != nil {
			return err
		}
		p.NATSUserKey = ""
		return nil
	})
	return err
}

// SetDisabled disables or enables provider id's dispatches. A disabled
// provider's dispatches stay in the outbox until it is enabled again;
// its NATS access is unchanged.
func (r *Registry) SetDisabled(ctx context.Context, id string, disabled bool) error {
	note := "dispatches enabled"
	if disabled {
		note = "dispatches disabled"
	}
	// Under the lock like any change: change writes back the NATS fields
	// it read, and a rotation committed in between would be undone (its
	// new user key and account replaced by the old, which a later
	// revocation would then miss).
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.change(ctx, id, note, func(p *tocsin.Provider) error {
		p.Disabled = disabled
		return nil
	})
	return err
}

// change applies f to the stored provider id and stores the result with
// an audit entry. f runs outside the store's transaction (it may push to
// NATS); callers hold mu when it changes NATS fields.
func (r *Registry) change(ctx context.Context, id, note string, f func(*tocsin.Provider) error) (*tocsin.Provider, error) {
	p, err := r.stored(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := f(p); err != nil {
		return nil, err
	}
	err = r.Service.Store.Update(ctx, func(tx tocsin.Tx) error {
		cur, err := tx.Provider(id)
		if err != nil {
			return err
		}
		cur.NATSUser, cur.NATSPasswordHash = p.NATSUser, p.NATSPasswordHash
		cur.NATSAccount, cur.NATSAccountJWT, cur.NATSUserKey = p.NATSAccount, p.NATSAccountJWT, p.NATSUserKey
		cur.Disabled = p.Disabled
		if err := tx.PutProvider(cur); err != nil {
			return err
		}
		return tx.Audit(tocsin.AuditEntry{At: r.Service.Clock.Now(), Action: tocsin.AuditProvider,
			Source: tocsin.SourceFrom(ctx), Target: id, Note: note})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (r *Registry) stored(ctx context.Context, id string) (*tocsin.Provider, error) {
	var p *tocsin.Provider
	err := r.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		p, err = tx.Provider(id)
		return err
	})
	return p, err
}

// Sync brings the servers' resolvers in line with the store at start: the
// coordinator's account, then every provider's account as last signed
// (a server that has it already keeps it as it is). A provider registered
// when NATS logins were passwords is converted: it gets an account and a
// user, whose credentials Sync returns, by provider id, to be handed over
// once; the old password stops working, since a server in operator mode
// knows no passwords.
func (r *Registry) Sync(ctx context.Context) (map[string]Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	coord, err := r.Keys.CoordinatorAccountJWT()
	if err != nil {
		return nil, err
	}
	if err := r.Resolver.Push(ctx, coord); err != nil {
		return nil, fmt.Errorf("nats: push the coordinator's account: %w", err)
	}
	var providers []*tocsin.Provider
	if err := r.Service.Store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		providers, err = tx.Providers()
		return err
	}); err != nil {
		return nil, fmt.Errorf("providers: %w", err)
	}
	converted := map[string]Credentials{}
	for _, p := range providers {
		// A provider stored, before ids were checked, under a name the
		// coordinator keeps for itself (tocsin) gets no account.
		if tocsin.CheckID("provider", p.ID) != nil {
			continue
		}
		switch {
		case p.NATSAccountJWT != "":
			if err := r.Resolver.Push(ctx, p.NATSAccountJWT); err != nil {
				return nil, fmt.Errorf("nats: push provider %s's account: %w", p.ID, err)
			}
		case p.NATSPasswordHash != "":
			var u UserCreds
			changed, err := r.change(ctx, p.ID, "converted from a NATS password to a NATS account", func(p *tocsin.Provider) error {
				var err error
				u, err = r.reissue(ctx, p)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("convert provider %s: %w", p.ID, err)
			}
			converted[p.ID] = r.credentials(changed, u)
		}
	}
	return converted, nil
}

// DisabledProviders returns the ids of the disabled providers.
func DisabledProviders(ctx context.Context, store tocsin.Store) ([]string, error) {
	var ids []string
	err := store.View(ctx, func(tx tocsin.ReadTx) error {
		ps, err := tx.Providers()
		for _, p := range ps {
			if p.Disabled {
				ids = append(ids, p.ID)
			}
		}
		return err
	})
	slices.Sort(ids)
	return ids, err
}

// Kept returns provider id's credentials around creds, the text of a
// .creds file issued earlier, if it is still the provider's current user
// (not revoked nor rotated since).
func (r *Registry) Kept(ctx context.Context, id, creds string) (Credentials, bool) {
	_, uc, err := ParseCreds(creds)
	if err != nil {
		return Credentials{}, false
	}
	p, err := r.stored(ctx, id)
	if err != nil || p.NATSUserKey == "" || uc.Subject != p.NATSUserKey || uc.IssuerAccount != p.NATSAccount {
		return Credentials{}, false
	}
	return r.credentials(p, UserCreds{Key: uc.Subject, Text: creds}), true
}
