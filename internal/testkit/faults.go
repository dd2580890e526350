package testkit

import (
	"context"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

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

type failingTx struct {
	tocsin.Tx
	s failingStore
}

func (t failingTx) Broadcast(id string) (*tocsin.Broadcast, error) {
	if id == t.s.id {
		return nil, t.s.err
	}
	return t.Tx.Broadcast(id)
}

type failingReadTx struct {
	tocsin.ReadTx
	s failingStore
}

func (t failingReadTx) Broadcast(id string) (*tocsin.Broadcast, error) {
	if id == t.s.id {
		return nil, t.s.err
	}
	return t.ReadTx.Broadcast(id)
}
