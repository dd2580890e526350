package tocsin

import "context"

// Reads the adapters need besides broadcasts. They go through the service,
// never the store, so that who may read what is decided here.

// Organisations returns every organisation, for the admin.
func (s *Service) Organisations(ctx context.Context, a Actor) ([]*Organisation, error) {
	if a.Role != RoleAdmin {
		return nil, Errorf(CodeForbidden, "only an admin may list organisations")
	}
	return s.directory(ctx)
}

// OrganisationNames returns every organisation by id, for naming them to
// any signed-in person: names and levels are public facts, nothing else
// of an organisation is in them.
func (s *Service) OrganisationNames(ctx context.Context) (map[string]Organisation, error) {
	orgs, err := s.directory(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Organisation, len(orgs))
	for _, o := range orgs {
		out[o.ID] = Organisation{ID: o.ID, Name: o.Name, NameZH: o.NameZH, Role: o.Role, Level: o.Level, Jurisdiction: o.Jurisdiction}
	}
	return out, nil
}

// Organisation returns one organisation by id (sign-in and sessions).
func (s *Service) Organisation(ctx context.Context, id string) (*Organisation, error) {
	var o *Organisation
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		o, err = tx.Organisation(id)
		return err
	})
	return o, err
}

// Account returns a web login and its organisation (sign-in).
func (s *Service) Account(ctx context.Context, username string) (*Account, *Organisation, error) {
	var acct *Account
	var org *Organisation
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		if acct, err = tx.Account(username); err != nil {
			return err
		}
		org, err = tx.Organisation(acct.Org)
		return err
	})
	return acct, org, err
}

func (s *Service) directory(ctx context.Context) ([]*Organisation, error) {
	var orgs []*Organisation
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		orgs, err = tx.Organisations()
		return err
	})
	if orgs == nil {
		orgs = []*Organisation{}
	}
	return orgs, err
}

// Providers returns the registered providers, for the admin and regulators.
func (s *Service) Providers(ctx context.Context, a Actor) ([]*Provider, error) {
	if a.Role != RoleAdmin && a.Role != RoleRegulator {
		return nil, Errorf(CodeForbidden, "only an admin or a regulator may list providers")
	}
	var providers []*Provider
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		providers, err = tx.Providers()
		return err
	})
	return providers, err
}

// Alert returns a broadcast for its public documents (CAP) and, for a
// correction, the broadcast it corrects (whose identity the CAP Update
// references). A broadcast that went out to the public (Public) is
// anyone's to read; any other only an actor's who may Get it, and a nil
// actor (no token) gets CodeUnauthorized.
func (s *Service) Alert(ctx context.Context, a *Actor, id string) (b, original *Broadcast, err error) {
	err = s.Store.View(ctx, func(tx ReadTx) error {
		if b, err = tx.Broadcast(id); err != nil {
			return err
		}
		if b.References != "" {
			if original, err = tx.Broadcast(b.References); IsCode(err, CodeNotFound) {
				original = nil // purged: the caller decides what it can still show
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	switch {
	case b.Public():
	case a == nil:
		return nil, nil, Errorf(CodeUnauthorized,
			"broadcast %s is not a released public alert; reading its CAP needs an Authorization: Bearer <JWT> header", id)
	case !canRead(*a, b, s.Regions):
		return nil, nil, Errorf(CodeForbidden, "broadcast %s is outside your jurisdiction", id)
	}
	return b, original, nil
}

// PublicAlerts returns, among the most recently filed max broadcasts
// (rounded up to a page), those that went out to the public, for the
// alert feed, which needs no token.
func (s *Service) PublicAlerts(ctx context.Context, max int) ([]*Broadcast, error) {
	var out []*Broadcast
	err := s.Store.View(ctx, func(tx ReadTx) error {
		out = out[:0] // fn may run more than once
		q := Query{Status: []Status{StatusDispatching, StatusCompleted, StatusCancelled, StatusExpired}, Limit: MaxPageSize}
		for seen := 0; seen < max; {
			p, err := tx.Broadcasts(q)
			if err != nil {
				return err
			}
			seen += len(p.Broadcasts)
			for _, b := range p.Broadcasts {
				if b.Public() {
					out = append(out, b)
				}
			}
			if p.NextCursor == "" {
				return nil
			}
			q.Cursor = p.NextCursor
		}
		return nil
	})
	return out, err
}
