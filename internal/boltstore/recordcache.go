package boltstore

import "sync"

// recordCache keeps decoded records of one small bucket between
// transactions, for the records nearly every request reads: each API call
// reads its credential and organisation, and each filing its department
// again in the writer. Decoding them was most of what authenticating a
// request cost (BenchmarkAuthenticate).
//
// Validity works as providerCache's: a writer marks the bucket changed
// with its transaction id before it commits, and drops every record; a
// record is taken only by a reader whose snapshot is no older than that
// change, and offered only by one, so no snapshot sees a record newer or
// older than its own. Only read-only transactions offer records: a
// writer's reads could be of its own writes, which may yet roll back.
//
// T must be a value with no references (a copy is a deep copy).
type recordCache[T any] struct {
	mu      sync.Mutex
	records map[string]T // guarded by mu
	changed uint64       // guarded by mu: id of the last transaction that wrote the bucket
}

// maxCachedRecords bounds a cache: past it, it starts again empty.
const maxCachedRecords = 4096

func (c *recordCache[T]) get(id string, txid uint64) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.records[id]
	if !ok || txid < c.changed {
		var zero T
		return zero, false
	}
	return v, true
}

func (c *recordCache[T]) put(id string, v T, txid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if txid < c.changed {
		return
	}
	if c.records == nil || len(c.records) >= maxCachedRecords {
		c.records = make(map[string]T)
	}
	c.records[id] = v
}

// invalidate marks that transaction txid writes the bucket.
func (c *recordCache[T]) invalidate(txid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changed = max(c.changed, txid)
	clear(c.records)
}
