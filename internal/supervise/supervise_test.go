package supervise

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailingLoopsAreRestarted(t *testing.T) {
	tests := []struct {
		name string
		fail func(n int) error // what the nth run does before it would block
	}{
		{"error", func(int) error { return errors.New("no responders available for request") }},
		{"returns nil", func(int) error { return nil }},
		{"panics", func(int) error { panic("nil map") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var ups []bool
			var restarts atomic.Int32
			s := &Supervisor{
				MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
				OnUp:      func(_ string, up bool) { mu.Lock(); ups = append(ups, up); mu.Unlock() },
				OnRestart: func(string) { restarts.Add(1) },
			}
			ctx, cancel := context.WithCancel(context.Background())
			var runs atomic.Int32
			s.Go(ctx, "relay", func(ctx context.Context) error {
				n := int(runs.Add(1))
				if n <= 3 {
					return tt.fail(n)
				}
				<-ctx.Done()
				return ctx.Err()
			})
			waitFor(t, "the fourth run", func() bool { return runs.Load() == 4 })
			waitFor(t, "the loop to be up", func() bool { return len(s.Down()) == 0 })
			st := s.Statuses()[0]
			if st.Restarts != 3 || restarts.Load() != 3 || st.LastErr == nil {
				t.Errorf("status %+v, OnRestart %d times; want 3 restarts and the last error", st, restarts.Load())
			}
			cancel()
			s.Wait()
			mu.Lock()
			defer mu.Unlock()
			want := []bool{true, false, true, false, true, false, true, false}
			if len(ups) != len(want) {
				t.Errorf("up transitions %v, want %v", ups, want)
			}
		})
	}
}

func TestDownNamesTheLoopAndItsError(t *testing.T) {
	s := &Supervisor{MinBackoff: time.Hour, MaxBackoff: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Wait() }()
	s.Go(ctx, "receipts", func(context.Context) error { return errors.New("receipt consumer: no responders") })
	s.Go(ctx, "relay", func(ctx context.Context) error { <-ctx.Done(); return nil })
	waitFor(t, "receipts to be down", func() bool { return len(s.Down()) == 1 })
	got := s.Down()[0]
	if !strings.Contains(got, "receipts") || !strings.Contains(got, "no responders") {
		t.Errorf("Down() = %q, want the loop's name and error", got)
	}
}

func TestWaitJoinsEveryLoop(t *testing.T) {
	s := &Supervisor{MinBackoff: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	var running atomic.Int32
	for _, name := range []string{"a", "b", "c"} {
		s.Go(ctx, name, func(ctx context.Context) error {
			running.Add(1)
			defer running.Add(-1)
			<-ctx.Done()
			return nil
		})
	}
	waitFor(t, "all three running", func() bool { return running.Load() == 3 })
	cancel()
	s.Wait()
	if n := running.Load(); n != 0 {
		t.Errorf("%d loops still running after Wait", n)
	}
	// A loop waiting out its backoff also ends at once.
	s2 := &Supervisor{MinBackoff: time.Hour}
	ctx2, cancel2 := context.WithCancel(context.Background())
	s2.Go(ctx2, "failing", func(context.Context) error { return errors.New("down") })
	waitFor(t, "the failure", func() bool { return len(s2.Down()) == 1 })
	cancel2()
	done := make(chan struct{})
	go func() { s2.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return while the loop was backing off")
	}
}
