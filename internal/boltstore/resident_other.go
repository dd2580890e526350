//go:build !linux

package boltstore

// dropMapped does nothing here: the resident set is left to the system.
func dropMapped(addr, size uintptr) error { return nil }
