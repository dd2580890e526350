package tocsin

import "context"

// Reach is one provider a scope reaches, and the regions of the scope it
// covers: what its dispatch will carry.
type Reach struct {
	Provider string   `json:"provider"`
	Name     string   `json:"name"`
	Regions  []string `json:"regions"`
}

// Coverage returns the providers a broadcast with this scope would be
// dispatched to now, in the order release dispatches them, each with the
// regions it covers. A scope no provider covers reaches none.
func (s *Service) Coverage(ctx context.Context, scope []string) ([]Reach, error) {
	var providers []*Provider
	err := s.Store.View(ctx, func(tx ReadTx) error {
		var err error
		providers, err = tx.Providers()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Reach{}
	for _, p := range providers {
		if regions := p.Coverage(s.Regions, scope); len(regions) > 0 {
			out = append(out, Reach{Provider: p.ID, Name: p.Name, Regions: regions})
		}
	}
	return out, nil
}

// CheckFiling applies every rule File applies to f for a, without filing
// anything, and returns f as File would store it (text cleaned, scope
// deduplicated). A confirmation step shows the result, so that what the
// person confirms is what is filed; File checks everything again.
func (s *Service) CheckFiling(a Actor, f Filing) (Filing, error) {
	if err := checkFiler(a); err != nil {
		return f, err
	}
	if f.Emergency != nil {
		e := *f.Emergency
		f.Emergency = &e // validateContent cleans it in place
	}
	if err := validateContent(&f, s.Regions); err != nil {
		return f, err
	}
	if err := checkFilingScope(a, f.Scope, s.Regions); err != nil {
		return f, err
	}
	if _, _, err := s.checkTiming(f, s.now()); err != nil {
		return f, err
	}
	return f, nil
}
