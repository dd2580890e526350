package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Usage is where the file's bytes are: the bytes of the pages each
// top-level bucket holds (its own and its sub-buckets'), and of the pages
// free for reuse.
type Usage struct {
	FileBytes int64
	Buckets   map[string]int64
	FreeBytes int64
}

// Usage reports the file's pages by bucket, for the bench's bytes-per-
// broadcast breakdown. It reads every page of the file.
func (db *DB) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Buckets: map[string]int64{}}
	db.bmu.RLock()
	defer db.bmu.RUnlock()
	if db.bolt == nil {
		return u, ErrClosed
	}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		u.FileBytes = btx.Size()
		stats := btx.DB().Stats()
		u.FreeBytes = int64(stats.FreePageN+stats.PendingPageN) * int64(btx.DB().Info().PageSize)
		return btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := b.Stats()
			u.Buckets[string(name)] = int64(s.BranchAlloc + s.LeafAlloc)
			return nil
		})
	})
	if err != nil {
		return u, fmt.Errorf("store usage: %w", err)
	}
	return u, nil
}
