package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name               string
		floor, live, roots uint64
		base, want         int
	}{
		{"small heap: the goal is the floor", 64 * mib, 16 * mib, 0, 100, 300},
		{"roots count toward the goal", 64 * mib, 16 * mib, 16 * mib, 100, 150},
		{"a larger heap keeps its pace", 64 * mib, 48 * mib, 0, 100, 100},
		{"past the floor", 64 * mib, 100 * mib, 0, 100, 100},
		{"a slower base pace is kept", 64 * mib, 16 * mib, 0, 400, 400},
		{"a tiny heap is bounded", 64 * mib, 1, 0, 100, maxPercent},
		{"nothing measured yet", 64 * mib, 0, 0, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentFor(tc.floor, tc.live, tc.roots, tc.base); got != tc.want {
				t.Errorf("percentFor(%d, %d, %d, %d) = %d, want %d", tc.floor, tc.live, tc.roots, tc.base, got, tc.want)
			}
		})
	}
}

// gcPercent reads the collector's percentage.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// The pacer raises the percentage at once, hears of every collection
// after, so a percentage set in between does not stand, and gives the
// base back when stopped.
func TestFloorFollowsCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := Floor(1 << 30) // far above this test's heap
	defer stop()
	if p := gcPercent(); p <= 100 {
		t.Fatalf("GC percent %d with a 1 GiB floor; want it raised", p)
	}
	debug.SetGCPercent(100) // as a second coordinator's --gc-percent would
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent still %d after collections; want the floor's raised again", gcPercent())
		}
		runtime.GC() // the cleanup runs after the collection, on its own goroutine
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if p := gcPercent(); p != 100 {
		t.Errorf("after stop GC percent is %d, want the base 100", p)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := gcPercent(); p != 100 {
		t.Errorf("a collection after stop set GC percent %d, want 100 kept", p)
	}
	stop() // twice is harmless
}

// Of two floors the higher holds, and the base comes back only once both
// are stopped.
func TestFloorsTogether(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stopLow := Floor(1) // below any heap: Go's pace
	stopHigh := Floor(1 << 30)
	if p := gcPercent(); p <= 100 {
		t.Fatalf("GC percent %d with a 1 GiB floor; want it raised", p)
	}
	stopHigh()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percent %d with only a floor below the heap; want 100", p)
	}
	stopLow()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percent %d after both stopped; want 100", p)
	}
}

func TestFloorLeavesCollectionOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	stop := Floor(1 << 30)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := gcPercent(); p != -1 {
		t.Errorf("GC percent %d with collection off; want -1 left alone", p)
	}
	stop()
	if p := gcPercent(); p != -1 {
		t.Errorf("stop set GC percent %d; want -1 left alone", p)
	}
}
