package tocsin

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

var (
	orgIDPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,31}$`)
	senderCodePattern = regexp.MustCompile(`^[0-9A-Za-z]{3,21}$`)
)

// ValidateOrganisation checks an organisation record before it is stored.
func ValidateOrganisation(o *Organisation, regions Regions) error {
	o.ID = strings.TrimSpace(o.ID)
	o.Name = strings.TrimSpace(o.Name)
	switch {
	case !orgIDPattern.MatchString(o.ID):
		return invalid("id", "organisation id %q must be 2-32 lowercase letters, digits or hyphens", o.ID)
	case o.Name == "":
		return invalid("name", "organisation name is required")
	case !o.Role.Valid() && o.Role != RoleProvider:
		return invalid("role", "role %q is not one of admin, regulator, department, provider", o.Role)
	case !o.Level.Valid():
		return invalid("level", "level %q is not one of national, provincial, prefecture, county", o.Level)
	}
	if err := checkJurisdiction(o.Level, o.Jurisdiction, regions); err != nil {
		return err
	}
	if o.Role == RoleDepartment && !senderCodePattern.MatchString(o.SenderCode) {
		return invalid("sender_code", "a department needs a sender code of 3-21 letters or digits (Article 10)")
	}
	return nil
}

// checkJurisdiction ties a level to the shape of its jurisdiction.
func checkJurisdiction(level Level, jur string, regions Regions) error {
	if level == LevelNational {
		if jur != National {
			return invalid("jurisdiction", "a national organisation's jurisdiction is %q", National)
		}
		return nil
	}
	if err := regions.Validate(jur); err != nil {
		return &Error{Code: CodeUnknownRegion, Message: err.Error(), Details: map[string]any{"field": "jurisdiction", "region": jur}}
	}
	if level == LevelProvincial && regions.Province(jur) != jur {
		return invalid("jurisdiction", "a provincial organisation's jurisdiction must be a province code, not %s", jur)
	}
	return nil
}

// PutOrganisation creates or replaces an organisation and, if acct is not
// nil, its web account, in one transaction.
func (s *Service) PutOrganisation(ctx context.Context, o Organisation, acct *Account) error {
	if err := ValidateOrganisation(&o, s.Regions); err != nil {
		return err
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		old, err := tx.Organisation(o.ID)
		if err == nil {
			o.CreatedAt = old.CreatedAt
		}
		if err := tx.PutOrganisation(&o); err != nil {
			return err
		}
		// A new password or a change of authority ends every session and
		// token issued before it.
		if old != nil && (authorityChanged(old, &o) || passwordChanged(tx, acct)) {
			if err := s.endCredentials(ctx, tx, o.ID, "organisation or password changed"); err != nil {
				return err
			}
		}
		note := fmt.Sprintf("%s %s %s %s", o.Role, o.Level, o.Jurisdiction, o.Name)
		if acct != nil {
			note += "; web login set"
		}
		if err := tx.Audit(AuditEntry{At: s.now(), Action: AuditOrganisation, Source: SourceFrom(ctx), Target: o.ID, Note: note}); err != nil {
			return err
		}
		if acct != nil {
			return tx.PutAccount(acct)
		}
		return nil
	})
}

// ValidateProvider checks a provider record before it is stored.
func ValidateProvider(p *Provider, regions Regions) error {
	p.ID = strings.TrimSpace(p.ID)
	p.Name = strings.TrimSpace(p.Name)
	switch {
	case !orgIDPattern.MatchString(p.ID):
		return invalid("id", "provider id %q must be 2-32 lowercase letters, digits or hyphens", p.ID)
	case p.Name == "":
		return invalid("name", "provider name is required")
	case len(p.Regions) == 0:
		return invalid("regions", "a provider must cover at least one region")
	}
	for i, code := range p.Regions {
		code = strings.TrimSpace(code)
		if err := regions.Validate(code); err != nil {
			return &Error{Code: CodeUnknownRegion, Message: err.Error(), Details: map[string]any{"field": "regions", "region": code}}
		}
		p.Regions[i] = code
	}
	return nil
}

// PutProvider creates or replaces a provider, keeping its registration time
// and, unless p carries new ones, its NATS credentials.
func (s *Service) PutProvider(ctx context.Context, p Provider) error {
	if err := ValidateProvider(&p, s.Regions); err != nil {
		return err
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		if old, err := tx.Provider(p.ID); err == nil {
			p.CreatedAt = old.CreatedAt
			if p.NATSUser == "" {
				p.NATSUser, p.NATSPasswordHash = old.NATSUser, old.NATSPasswordHash
			}
			p.LastSeen = old.LastSeen
		} else if !IsCode(err, CodeNotFound) {
			return err
		}
		if err := tx.PutProvider(&p); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditProvider, Source: SourceFrom(ctx), Target: p.ID,
			Note: fmt.Sprintf("%s covering %s", p.Name, strings.Join(p.Regions, ","))})
	})
}
