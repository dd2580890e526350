package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/schedule"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The scheduler's loop ends a broadcast whose send_until has passed:
// providers still sending get a stop, and the broadcast shows expired.
func TestSchedulerExpiresClosedWindows(t *testing.T) {
	now := time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)
	clock := testkit.NewClock(now)
	svc := testkit.MustService(t, testkit.MustStore(t, nil), clock)
	testkit.MustSeed(t, svc, testkit.Directory)
	until := now.Add(time.Hour)
	b, _, err := svc.File(context.Background(), testkit.Actor(t, "gd-met"), tocsin.Filing{
		Title: "Typhoon", Content: "【广东省气象局】台风红色预警：请立即停止户外活动。", Scope: []string{"440100"},
		SendUntil: &until,
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red},
	}, "")
	if err != nil {
		t.Fatal(err)
	}

	expired := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s := &schedule.Scheduler{Service: svc, Log: testkit.Logger(t), OnExpire: func(n int) { expired <- n }}
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	clock.Set(until.Add(time.Second))
	select {
	case n := <-expired:
		if n != 1 {
			t.Fatalf("expired %d, want 1", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the scheduler did not expire the broadcast")
	}
	got, err := svc.Get(context.Background(), testkit.Actor(t, "admin"), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tocsin.StatusExpired {
		t.Fatalf("status = %s, want expired", got.Status)
	}
	for _, p := range got.Providers {
		if p.Status != tocsin.DeliveryStopped {
			t.Errorf("provider %s is %s, want stopped", p.Provider, p.Status)
		}
	}
}
