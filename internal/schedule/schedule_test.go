package schedule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/schedule"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// start runs s until the test ends.
func start(t *testing.T, s *schedule.Scheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// next is the next count a round reports on ch, within 20 s.
func next(t *testing.T, ch <-chan int, what string) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return 0
	}
}

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
	start(t, &schedule.Scheduler{Service: svc, Log: testkit.Logger(t), OnExpire: func(n int) { expired <- n }})

	clock.Set(until.Add(time.Second))
	if n := next(t, expired, "the scheduler to expire the broadcast"); n != 1 {
		t.Fatalf("expired %d, want 1", n)
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

// A due broadcast that cannot be released is not a silent failure: the
// scheduler says so for readiness, asks again once a second rather than
// at once for ever, and releases the others due all the same.
func TestFailingReleaseIsReportedNotSpun(t *testing.T) {
	filed := time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)
	sendAt := time.Date(2026, 10, 9, 9, 0, 0, 0, tocsin.Shanghai)
	clock := testkit.NewClock(filed)
	store := testkit.MustStore(t, nil)
	svc := testkit.MustService(t, store, clock)
	testkit.MustSeed(t, svc, testkit.Directory)
	ctx := context.Background()
	var ids []string
	for _, title := range []string{"First", "Second"} {
		b, _, err := svc.File(ctx, testkit.Actor(t, "gd-met"), tocsin.Filing{
			Title: title, Content: "【广东省气象局】国庆假期出行请关注天气预报。", Scope: []string{"440100"}, SendAt: &sendAt,
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Approve(ctx, testkit.Actor(t, "gd-cab"), b.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
	}
	counted := &testkit.CountingStore{Store: testkit.FailingBroadcast(store, ids[0], errors.New("the record will not decode"))}
	svc.Store = counted
	clock.Set(sendAt.Add(time.Minute))

	released := make(chan int, 10)
	s := &schedule.Scheduler{Service: svc, Log: testkit.Logger(t), FailingAfter: 300 * time.Millisecond,
		OnRelease: func(n int) { released <- n }}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("problems before the first round: %v", p)
	}
	start(t, s)

	if n := next(t, released, "the second to be released"); n != 1 {
		t.Errorf("released %d, want the second", n)
	}
	time.Sleep(1500 * time.Millisecond)
	p := s.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "release") || !strings.Contains(p[0], ids[0]) {
		t.Errorf("problems %v, want the failing release, naming %s", p, ids[0])
	}
	// A round a second: a handful of transactions, not a spin.
	if n := counted.Updates(); n > 6 {
		t.Errorf("%d write transactions in about 1.5 s: the failing release is retried without pause", n)
	}
}
