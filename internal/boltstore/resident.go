package boltstore

import (
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the file through a shared read-only mapping, and every page
// it has touched stays mapped: the process's resident set grows with the
// file (600 MB at 100,000 finished broadcasts), though those pages are
// the kernel's page cache, kept or dropped the same whether mapped or not.
// Unmapping them every trimEvery keeps the resident set to what the store
// is working on; a page read again is a minor fault from the page cache,
// no disk read.
const trimEvery = time.Second

// trimLoop unmaps the pages every trimEvery until Close. A failure costs
// memory, not data: it is logged when trimming starts failing and when it
// works again.
func (db *DB) trimLoop() {
	defer close(db.trimDone)
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-db.quit:
			return
		case <-t.C:
		}
		switch err := db.TrimResident(); {
		case err != nil && !failing:
			failing = true
			db.log.Warn("store pages cannot be unmapped; the resident set grows with the file", slog.Any("error", err))
		case err == nil && failing:
			failing = false
			db.log.Info("store pages unmapped again")
		}
	}
}

// TrimResident unmaps the store file's pages now, as trimLoop does every
// trimEvery.
func (db *DB) TrimResident() error {
	db.bmu.RLock()
	defer db.bmu.RUnlock()
	if db.bolt == nil {
		return nil
	}
	// Inside a read transaction, which holds bbolt's mapping lock: the
	// file cannot be remapped elsewhere while its range is advised.
	return db.bolt.View(func(btx *bolt.Tx) error {
		return dropMapped(btx.DB().Info().Data, uintptr(btx.Size()))
	})
}
