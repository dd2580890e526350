package tocsin

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var (
	// idPattern is the shape of an organisation's or a provider's id: a
	// lower-case ASCII letter, then letters and digits, in words joined by
	// single hyphens (cmcc, gd-met, gx-health). An id becomes a NATS user,
	// subject token, account and consumer name, a URL path segment and a
	// file key, so it holds nothing any of those would read specially.
	idPattern         = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	senderCodePattern = regexp.MustCompile(`^[0-9A-Za-z]{3,21}$`)
)

// Lengths of an organisation's or a provider's id.
const (
	MinIDLength = 2
	MaxIDLength = 32
)

// reservedIDs are names the coordinator uses for itself, or that NATS and
// its configuration read specially: an organisation or provider by one of
// these names would collide with the coordinator's NATS user (tocsin) or
// its consumers (tocsin-coordinator, and every other tocsin-* name is kept
// for its own), or pass for the system. "admin" is reserved for providers
// only: the operator's organisation is called admin.
var reservedIDs = []string{"tocsin", "sys", "system", "nats", "jetstream", "route", "root", "global", "all", "none"}

// CheckID checks the id an organisation or a provider (kind) would be
// stored under.
func CheckID(kind, id string) error {
	reserved := slices.Contains(reservedIDs, id) || strings.HasPrefix(id, "tocsin-") ||
		(kind == "provider" && id == "admin")
	switch {
	case len(id) < MinIDLength || len(id) > MaxIDLength:
		return invalid("id", "%s id %q must be %d-%d characters long", kind, id, MinIDLength, MaxIDLength).
			With("max_length", MaxIDLength)
	case !idPattern.MatchString(id):
		return invalid("id", "%s id %q must start with a lower-case letter and hold only lower-case letters, digits and single hyphens between them (like gd-met)", kind, id)
	case reserved:
		return invalid("id", "%s id %q is reserved for the coordinator's own use; choose another", kind, id).
			With("reserved", true)
	}
	return nil
}

// ValidateOrganisation checks an organisation record before it is stored.
func ValidateOrganisation(o *Organisation, regions Regions) error {
	o.ID = strings.TrimSpace(o.ID)
	if err := CheckID("organisation", o.ID); err != nil {
		return err
	}
	var err error
	if o.Name, err = cleanText("name", o.Name, singleLine, MaxNameChars); err != nil {
		return err
	}
	if o.NameZH, err = cleanText("name_zh", o.NameZH, singleLine, MaxNameChars); err != nil {
		return err
	}
	switch {
	case Blank(o.Name):
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
	if err := CheckID("provider", p.ID); err != nil {
		return err
	}
	var err error
	if p.Name, err = cleanText("name", p.Name, singleLine, MaxNameChars); err != nil {
		return err
	}
	switch {
	case Blank(p.Name):
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

// PutProvider creates or replaces a provider, keeping its registration
// time, whether it is disabled and, unless p carries new ones, its NATS
// credentials.
func (s *Service) PutProvider(ctx context.Context, p Provider) error {
	if err := ValidateProvider(&p, s.Regions); err != nil {
		return err
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		if old, err := tx.Provider(p.ID); err == nil {
			p.CreatedAt = old.CreatedAt
			if p.NATSUser == "" && p.NATSAccount == "" {
				p.NATSUser, p.NATSPasswordHash = old.NATSUser, old.NATSPasswordHash
				p.NATSAccount, p.NATSAccountJWT, p.NATSUserKey = old.NATSAccount, old.NATSAccountJWT, old.NATSUserKey
			}
			p.Disabled = old.Disabled
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
