// Package gcpace keeps Go's garbage collector from running more often than
// a heap of a given size needs.
//
// Go collects once the heap has grown by GOGC percent of what the last
// collection left live. A coordinator's live heap is small (12-25 MB with
// the demo directory, 35-57 MB with 300 providers), so under load it
// collected every 0.1-1 s, and on 2 cores a collection during a commit
// holds the single writer for 2-5 ms: preempted for its stack scan, then
// queued behind the mark workers. Every filing in that commit waits as
// long for its 201; enough did to make the p99 latency
// (docs/benchmarks.md). A floor under the heap goal makes collections
// rarer while the heap is small and changes nothing once it is larger;
// the soft memory limit (debug.SetMemoryLimit) still bounds it from
// above, and comes first when it is the lower.
package gcpace

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the percentage a tiny live heap would ask for.
const maxPercent = 10_000

// pace is the process's one pacer: the GC percentage is the process's,
// and tests run many coordinators in one.
var pace struct {
	sync.Mutex
	floors  map[*uint64]bool // the floors asked for and not yet stopped
	base    int              // the percentage before the first of them
	armed   bool             // a sentinel waits for the next collection
	samples []metrics.Sample
}

// Floor keeps the heap goal at no less than floor bytes until stop is
// called: after each collection it sets the GC percentage that makes the
// goal floor, unless the percentage in force before (GOGC, or
// debug.SetGCPercent) already gives more. Of several floors the highest
// holds; once all are stopped the percentage is restored. Calling stop
// twice is harmless. With collection off (GOGC=off) Floor does nothing.
func Floor(floor uint64) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	pace.Lock()
	defer pace.Unlock()
	if len(pace.floors) == 0 {
		pace.base = debug.SetGCPercent(100)
		debug.SetGCPercent(pace.base)
		if pace.base < 0 {
			return func() {}
		}
		pace.floors = map[*uint64]bool{}
		pace.samples = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	}
	id := &floor
	pace.floors[id] = true
	adjust()
	if !pace.armed {
		pace.armed = true
		arm()
	}
	return sync.OnceFunc(func() {
		pace.Lock()
		defer pace.Unlock()
		delete(pace.floors, id)
		adjust()
	})
}

// sentinel is garbage from birth: its cleanup runs after the next
// collection, which is how the pacer hears of each one. It holds a
// pointer so that it is never one of the tiny allocator's shared blocks,
// whose cleanups may never run.
type sentinel struct{ _ *byte }

func arm() { runtime.AddCleanup(&sentinel{}, collected, 0) }

func collected(int) {
	pace.Lock()
	defer pace.Unlock()
	if len(pace.floors) == 0 {
		pace.armed = false
		return
	}
	adjust()
	arm()
}

// adjust sets the percentage the last collection's live heap and the
// highest floor call for, or the base once no floor is left. It runs
// with pace locked, once a collection: it sets the percentage even when
// unchanged, so one set by someone else in between (a second
// coordinator's --gc-percent, in tests) does not stand.
func adjust() {
	want := pace.base
	if highest := highestFloor(); highest > 0 {
		metrics.Read(pace.samples)
		live := pace.samples[0].Value.Uint64()
		roots := pace.samples[1].Value.Uint64() + pace.samples[2].Value.Uint64()
		want = percentFor(highest, live, roots, pace.base)
	}
	debug.SetGCPercent(want)
}

func highestFloor() uint64 {
	var highest uint64
	for f := range pace.floors {
		highest = max(highest, *f)
	}
	return highest
}

// percentFor is the GC percentage that puts the heap goal at floor after
// a collection that left live bytes of heap, with roots bytes of stacks
// and globals scanned, and never less than base. The runtime's goal is
// live + (live + roots) * percent / 100.
func percentFor(floor, live, roots uint64, base int) int {
	if live >= floor || live+roots == 0 {
		return base
	}
	want := math.Ceil(float64(floor-live) * 100 / float64(live+roots))
	return int(max(float64(base), min(want, maxPercent)))
}
