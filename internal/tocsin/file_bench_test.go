//go:build unix

package tocsin_test

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFileEmergency files emergencies for 440100 as gd-met, the
// filing tocsin bench's throughput figure is made of, from 64 filers at
// once so they share commits as under load. Its allocations and CPU per
// filing are the service's and the store's part of that figure, without
// HTTP or NATS: the number to move when making filing cheaper. Time per
// filing is mostly waiting on fsync; cpu-µs/op is the process's CPU (user
// and system) per filing, the figure throughput under load follows.
//
//	go test -run '^$' -bench FileEmergency -benchmem ./internal/tocsin/
func BenchmarkFileEmergency(b *testing.B) {
	e := mustService(b, filedAt)
	a := actor(b, "gd-met")
	f := emergency("typhoon warning", "440100")
	b.ReportAllocs()
	b.SetParallelism(32) // 64 filers on 2 cores
	b.ResetTimer()
	before := processCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.svc.File(context.Background(), a, f, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((processCPU(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the CPU time, user and system, this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
