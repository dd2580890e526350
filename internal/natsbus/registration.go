package natsbus

import (
	"context"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Registration is what registering a provider answers the admin (POST
// /api/v1/providers): its credentials, shown once, with its name and
// regions.
type Registration struct {
	Credentials
	Name    string   `json:"name"`
	Regions []string `json:"regions"`
}

// Registration registers p (Register) and returns it with its
// credentials.
func (r *Registry) Registration(ctx context.Context, p tocsin.Provider) (Registration, error) {
	creds, err := r.Register(ctx, p)
	if err != nil {
		return Registration{}, err
	}
	return Registration{Credentials: creds, Name: p.Name, Regions: p.Regions}, nil
}
