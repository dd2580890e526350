package testkit

import (
	"context"
	"sync/atomic"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// CountingStore is a store that counts its write transactions, each one
// fsync of the real bbolt file underneath.
type CountingStore struct {
	tocsin.Store
	updates atomic.Int64
}

func (s *CountingStore) Update(ctx context.Context, fn func(tocsin.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// Updates is how many write transactions were made.
func (s *CountingStore) Updates() int64 { return s.updates.Load() }

// FailingBroadcast is store, real in everything, except that reading the
// broadcast id fails with err, in reads and writes alike: one record that
// will not decode, say, among many that do. It is for what must go on
// around one broken record.
func FailingBroadcast(store tocsin.Store, id string, err error) tocsin.Store {
	return failingStore{Store: store, id: id, err: err}
}

type failingStore struct {
	tocsin.Store
	id  string
	err error
}

func (s failingStore) Update(ctx context.Context, fn func(tocsin.Tx) error) error {
	return s.Store.Update(ctx, func(tx tocsin.Tx) error { return fn(failingTx{Tx: tx, s: s}) })
}

func (s failingStore) View(ctx context.Context, fn func(tocsin.ReadTx) error) error {
	return s.Store.View(ctx, func(tx tocsin.ReadTx) error { return fn(failingReadTx{ReadTx: tx, s: s}) })
}

// read is tx's Broadcast, failing for the broken one.
func (s failingStore) read(id string, tx tocsin.ReadTx) (*tocsin.Broadcast, error) {
	if id == s.id {
		return nil, s.err
	}
	return tx.Broadcast(id)
}

type failingTx struct {
	tocsin.Tx
	s failingStore
}

func (t failingTx) Broadcast(id string) (*tocsin.Broadcast, error) { return t.s.read(id, t.Tx) }

type failingReadTx struct {
	tocsin.ReadTx
	s failingStore
}

func (t failingReadTx) Broadcast(id string) (*tocsin.Broadcast, error) { return t.s.read(id, t.ReadTx) }
