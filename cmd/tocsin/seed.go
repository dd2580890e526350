package main

import (
	"github.com/tocsin-dev/tocsin/internal/atomicfile"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/provider"
)

// seed is the directory a --seed file (or the demo) creates or updates.
type seed struct {
	Organisations []seedOrganisation `json:"organisations"`
	Providers     []tocsin.Provider  `json:"providers"`
}

type seedOrganisation struct {
	tocsin.Organisation
	// Password, if set, gives the organisation a web login whose
	// username is its id.
	Password string `json:"password,omitempty"`
}

func (c *coordinator) seedFile(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	var s seed
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	creds, err := c.apply(ctx, s, nil)
	if err != nil {
		return err
	}
	if len(creds) > 0 {
		data, _ := json.MarshalIndent(creds, "", "  ")
		c.log.Info("seeded providers; their NATS credentials are shown once, here", slog.String("credentials", string(data)))
	}
	return nil
}

// apply creates or updates everything in s. Passwords are hashed only for
// accounts that do not exist yet, so restarts stay fast and keep any
// password changed since. A provider in keep (credentials checked against
// the store) keeps them; every other provider gets fresh NATS credentials.
// It returns every provider's credentials, by provider id.
func (c *coordinator) apply(ctx context.Context, s seed, keep map[string]natsbus.Credentials) (map[string]natsbus.Credentials, error) {
	now := c.clock.Now()
	for _, o := range s.Organisations {
		o.CreatedAt = now
		var acct *tocsin.Account
		if o.Password != "" && !c.hasAccount(ctx, o.ID) {
			hash, err := auth.HashPassword(o.Password)
			if err != nil {
				return nil, fmt.Errorf("seed %s: %w", o.ID, err)
			}
			acct = &tocsin.Account{Username: o.ID, Org: o.ID, PasswordHash: hash, CreatedAt: now}
		}
		if err := c.service.PutOrganisation(ctx, o.Organisation, acct); err != nil {
			return nil, fmt.Errorf("seed organisation %s: %w", o.ID, err)
		}
	}
	creds := map[string]natsbus.Credentials{}
	for _, p := range s.Providers {
		if cr, ok := keep[p.ID]; ok {
			// PutProvider keeps the stored NATS account when p carries
			// none, so the name and regions are updated and the
			// credentials stand.
			if err := c.service.PutProvider(ctx, p); err != nil {
				return nil, fmt.Errorf("seed provider %s: %w", p.ID, err)
			}
			ensure, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.registry.Bus.EnsureProviderConsumer(ensure, p.ID)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("seed provider %s: %w", p.ID, err)
			}
			creds[p.ID] = cr
			continue
		}
		cr, err := c.registry.Register(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("seed provider %s: %w", p.ID, err)
		}
		creds[p.ID] = cr
	}
	return creds, nil
}

// keptCredentials reads the demo providers' credentials a previous run
// wrote to path and returns those still valid (their user neither revoked
// nor rotated since), with this run's URL. Reusing them lets reference
// providers started by hand (--no-simulators) ride out a demo restart;
// issuing new ones would revoke the old and cut every one off. Anything
// unreadable or no longer valid is left out, and so re-registered.
func (c *coordinator) keptCredentials(ctx context.Context, path string, providers []tocsin.Provider) map[string]natsbus.Credentials {
	keep := map[string]natsbus.Credentials{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return keep
	}
	var old map[string]natsbus.Credentials
	if err == nil {
		err = json.Unmarshal(data, &old)
	}
	if err != nil {
		c.log.Warn("demo provider credentials unreadable; registering the providers afresh", slog.String("path", path), slog.Any("error", err))
		return keep
	}
	for _, p := range providers {
		cr, ok := old[p.ID]
		if !ok || cr.Creds == "" {
			continue
		}
		kept, ok := c.registry.Kept(ctx, p.ID, cr.Creds)
		if !ok {
			c.log.Info("demo provider credentials no longer valid; re-registering", slog.String("provider", p.ID))
			continue
		}
		keep[p.ID] = kept
	}
	return keep
}

func (c *coordinator) hasAccount(ctx context.Context, username string) bool {
	err := c.store.View(ctx, func(tx tocsin.ReadTx) error {
		_, err := tx.Account(username)
		return err
	})
	return err == nil
}

// DemoPassword is every demo organisation's web password.
const DemoPassword = demo.Password

// demoDirectory is the fixed demo directory of DESIGN.md, every
// organisation with a web login.
func demoDirectory() seed {
	s := seed{Providers: demo.Providers()}
	for _, o := range demo.Organisations() {
		s.Organisations = append(s.Organisations, seedOrganisation{Organisation: o, Password: DemoPassword})
	}
	return s
}

// demoTokenTTL is how long the printed demo tokens stay valid.
const demoTokenTTL = 30 * 24 * time.Hour

// seedDemo seeds the demo directory, writes demo-tokens.json and prints
// what a newcomer needs.
func (c *coordinator) seedDemo(ctx context.Context, stdout io.Writer) error {
	dir := demoDirectory()
	credsPath := filepath.Join(c.cfg.Data, "demo-providers.json")
	creds, err := c.apply(ctx, dir, c.keptCredentials(ctx, credsPath, dir.Providers))
	if err != nil {
		return err
	}
	path := filepath.Join(c.cfg.Data, "demo-tokens.json")
	tokens, err := c.demoTokens(ctx, path, dir)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo tokens: %w", err)
	}
	credsData, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return err
	}
	// 0600: the file holds the providers' NATS user seeds.
	if err := atomicfile.Write(credsPath, append(credsData, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo providers: %w", err)
	}
	if !c.cfg.NoSimulators {
		for _, cr := range creds {
			c.startSimulator(ctx, cr)
		}
	}
	printDemo(stdout, c, path, credsPath, dir, data, credsData)
	return nil
}

// demoTokenRenewal is how close to expiry a kept demo token is replaced.
const demoTokenRenewal = 24 * time.Hour

// demoTokens returns a service token for each demo organisation that may
// hold one. Tokens are stored credentials now, so the ones a previous run
// wrote to path are kept while they still authenticate and have a day
// left, and scripts holding them survive a restart; the others (revoked,
// expiring, or the organisation changed) are issued afresh, as the
// operator.
func (c *coordinator) demoTokens(ctx context.Context, path string, dir seed) (map[string]string, error) {
	old := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &old); err != nil {
			c.log.Warn("demo tokens unreadable; issuing them afresh", slog.String("path", path), slog.Any("error", err))
		}
	}
	verifier := c.keys.Verifier(time.Now)
	operator := tocsin.Actor{Subject: "tocsin-demo", Role: tocsin.RoleAdmin, Org: tocsin.OperatorOrg,
		Level: tocsin.LevelNational, Jurisdiction: tocsin.National}
	tokens := map[string]string{}
	for _, o := range dir.Organisations {
		if !o.Role.Valid() {
			continue // providers speak NATS, not bearer tokens
		}
		if t := old[o.ID]; t != "" {
			presented, err := verifier.VerifyToken(t)
			if err == nil && presented.Org == o.ID && time.Until(presented.ExpiresAt) > demoTokenRenewal {
				if _, err := c.service.Authenticate(ctx, presented); err == nil {
					tokens[o.ID] = t
					continue
				}
			}
		}
		now := time.Now()
		cred, stored, err := c.service.IssueToken(ctx, operator, tocsin.TokenRequest{
			Org: o.ID, Name: "demo", TTL: demoTokenTTL, Now: now})
		if err != nil {
			return nil, fmt.Errorf("demo token for %s: %w", o.ID, err)
		}
		t, err := c.keys.IssueKind(tocsin.CredentialService, cred.ID, demo.Actor(*stored), now, demoTokenTTL)
		if err != nil {
			return nil, fmt.Errorf("demo token for %s: %w", o.ID, err)
		}
		tokens[o.ID] = t
	}
	return tokens, nil
}

// startSimulator runs the reference provider in process with cr.
func (c *coordinator) startSimulator(ctx context.Context, cr natsbus.Credentials) {
	log := c.log.With(slog.String("simulator", cr.Provider))
	c.loops.Go(c.loopCtx, "simulator-"+cr.Provider, func(ctx context.Context) error {
		client, err := provider.Connect(ctx, provider.Config{URL: cr.URL, ID: cr.Provider, Creds: cr.Creds, Log: log})
		if err != nil {
			return fmt.Errorf("simulator %s: connect: %w", cr.Provider, err)
		}
		defer client.Close()
		return client.Run(ctx, provider.DefaultSimulation.Handle)
	})
}

func printDemo(w io.Writer, c *coordinator, tokensPath, credsPath string, dir seed, tokens, creds []byte) {
	base := "http://" + c.httpAddr
	sims := "in-process simulators for cmcc, cucc and ctcc are receiving and reporting"
	if c.cfg.NoSimulators {
		sims = "no simulators (--no-simulators): connect providers yourself"
	}
	fmt.Fprintf(w, "Tocsin demo\n\n")
	fmt.Fprintf(w, "  Web      %s/login\n", base)
	fmt.Fprintf(w, "  API      %s/api/v1\n", base)
	fmt.Fprintf(w, "  NATS     %s (%s)\n", c.natsURL, sims)
	fmt.Fprintf(w, "  Tokens   %s (one JWT per organisation, valid %s)\n", tokensPath, demoTokenTTL)
	fmt.Fprintf(w, "  Providers %s (NATS credentials, stream and consumer)\n\n", credsPath)
	fmt.Fprintf(w, "%s:\n%s\n%s:\n%s\n", tokensPath, tokens, credsPath, creds)
	fmt.Fprintf(w, "Web logins (password %q for all):\n", DemoPassword)
	for _, o := range dir.Organisations {
		jur := o.Jurisdiction
		fmt.Fprintf(w, "  %-10s %-10s %-10s %-9s %s\n", o.ID, o.Role, o.Level, jur, o.Name)
	}
	fmt.Fprintf(w, `
Try it (needs curl and jq):
  T() { jq -r --arg o "$1" '.[$o]' %[2]s; }
  # an emergency goes out at once
  curl -s -X POST %[1]s/api/v1/broadcasts -H "Authorization: Bearer $(T gd-met)" \
    -H 'Content-Type: application/json' -d '{"title":"台风红色预警","content":"【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}'
  # an ordinary filing waits ten working days and for review
  curl -s %[1]s/api/v1/calendar/earliest
  curl -s %[1]s/api/v1/broadcasts -H "Authorization: Bearer $(T gd-cab)"
  # read a provider's dispatches with the nats CLI
  jq -r .cmcc.creds %[4]s > cmcc.creds && chmod 600 cmcc.creds
  nats --server %[3]s --creds cmcc.creds consumer next TOCSIN_DISPATCH cmcc

`, base, tokensPath, c.natsURL, credsPath)
}
