package boltstore

import (
	"slices"
	"strings"
	"sync"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// providerCache keeps the decoded provider list between transactions.
// Every release reads all providers inside the single writer, and at 300
// providers decoding their records was a fifth of all CPU (tocsin bench's
// profile) and cut filings to under a hundred a second.
//
// A list is valid for the snapshot it was decoded from and every later
// one until a transaction writes a provider. The writer marks the change
// with its transaction id before it commits, so a reader of an older
// snapshot can neither take a list that is too new nor leave behind one
// that is stale.
type providerCache struct {
	mu      sync.Mutex
	list    []*tocsin.Provider // guarded by mu: decoded at snapshot at
	at      uint64             // guarded by mu
	changed uint64             // guarded by mu: id of the last transaction that wrote a provider
	// covering remembers, for list, which providers cover a scope (see
	// coverage). Guarded by mu; emptied whenever list is replaced.
	covering map[string][]covered
}

// covered is one provider covering a scope, and the regions of the scope
// it covers.
type covered struct {
	p       *tocsin.Provider
	regions []string
}

// maxCovering bounds the scopes remembered: a department files for the
// same few scopes day after day, and a store that sees many more only
// computes the rest.
const maxCovering = 1024

// get returns the cached list for a reader of snapshot txid. The list and
// its providers are never changed once cached (put copies them in, and
// invalidate replaces the list rather than edit it), so the caller may
// read them after the lock is gone; it must not change them.
func (c *providerCache) get(txid uint64) ([]*tocsin.Provider, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list == nil || c.at < c.changed || txid < c.changed {
		return nil, false
	}
	return c.list, true
}

// put offers a list decoded at snapshot txid; it keeps its own copies.
func (c *providerCache) put(list []*tocsin.Provider, txid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if txid < c.changed || (c.list != nil && txid < c.at) {
		return
	}
	c.list, c.at, c.covering = copyProviders(list), txid, nil
}

// copyProviders returns copies of list, deep enough that changing one
// changes nothing in list.
func copyProviders(list []*tocsin.Provider) []*tocsin.Provider {
	out := make([]*tocsin.Provider, len(list))
	for i, p := range list {
		cp := *p
		cp.Regions = slices.Clone(p.Regions)
		out[i] = &cp
	}
	return out
}

// invalidate marks that transaction txid writes a provider.
func (c *providerCache) invalidate(txid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list, c.changed, c.covering = nil, max(c.changed, txid), nil
}

// coverage returns who covers scope, remembered while list is the cached
// list. Judging it is what every release does inside the single writer:
// at 303 providers, a tenth of the writer's time.
func (c *providerCache) coverage(list []*tocsin.Provider, r tocsin.Regions, scope []string) []covered {
	key := strings.Join(scope, " ")
	c.mu.Lock()
	cached := c.holds(list)
	found, ok := c.covering[key]
	c.mu.Unlock()
	if cached && ok {
		return found
	}
	out := coverageOf(list, r, scope)
	if cached {
		c.mu.Lock()
		if c.holds(list) && len(c.covering) < maxCovering {
			if c.covering == nil {
				c.covering = map[string][]covered{}
			}
			c.covering[key] = out
		}
		c.mu.Unlock()
	}
	return out
}

// holds reports whether list is the cached list itself. Guarded by mu.
func (c *providerCache) holds(list []*tocsin.Provider) bool {
	return len(list) > 0 && len(c.list) == len(list) && &c.list[0] == &list[0]
}

// coverageOf judges which providers of list cover scope.
func coverageOf(list []*tocsin.Provider, r tocsin.Regions, scope []string) []covered {
	var out []covered
	for _, p := range list {
		if regions := p.Coverage(r, scope); len(regions) > 0 {
			out = append(out, covered{p, regions})
		}
	}
	return out
}
