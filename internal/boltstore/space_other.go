//go:build !linux

package boltstore

// freeBytes cannot tell the free space here; recovery from a full disk then
// rests on the probe's commit alone.
func freeBytes(string) (uint64, bool) { return 0, false }
