package boltstore

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Usage is where the file's bytes are: the pages each top-level bucket
// holds (its own and its sub-buckets'), and the pages free for reuse.
type Usage struct {
	FileBytes int64
	Buckets   map[string]BucketUsage
	FreeBytes int64
}

// BucketUsage is one bucket's share: the bytes of the pages it holds, the
// bytes of those its keys and values fill, and how many keys it has.
type BucketUsage struct {
	Alloc, Inuse int64
	Keys         int
}

// Usage reports the file's pages by bucket, for the bench's bytes-per-
// broadcast breakdown and for an operator asking why the file grew.
func (db *DB) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Buckets: map[string]BucketUsage{}}
	db.bmu.RLock()
	defer db.bmu.RUnlock()
	if db.bolt == nil {
		return u, ErrClosed
	}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		u.FileBytes = btx.Size()
		pageSize := int64(btx.DB().Info().PageSize)
		u.FreeBytes = int64(btx.DB().Stats().FreePageN+btx.DB().Stats().PendingPageN) * pageSize
		return btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := b.Stats()
			u.Buckets[string(name)] = BucketUsage{
				Alloc: int64(s.BranchAlloc + s.LeafAlloc),
				Inuse: int64(s.BranchInuse + s.LeafInuse),
				Keys:  s.KeyN,
			}
			return nil
		})
	})
	if err != nil {
		return u, fmt.Errorf("store usage: %w", err)
	}
	return u, nil
}
