package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/testkit/fulldisk"
)

// The operator's full disk: filings are refused with 503 while it is full,
// /readyz says so, and once space is back Tocsin takes and sends filings
// again without a restart; every 201 reaches its providers.
func TestFullDiskRefusesThenRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk")
	}
	// Full at once, or filling up under the filings themselves, where
	// JetStream may be the first to find no space.
	for _, leave := range []int64{0, 3 << 20} {
		t.Run(fmt.Sprintf("leave %d MiB", leave>>20), func(t *testing.T) { testFullDisk(t, leave) })
	}
}

func testFullDisk(t *testing.T, leave int64) {
	dir := fulldisk.Mount(t, "160m")
	s := startServer(t, dir, "demo")
	tok := demoTokens(t, dir)["gd-met"]
	regulator := demoTokens(t, dir)["gd-cab"]
	file := func(i int) apiResult {
		body := fmt.Sprintf(`{"title":"Typhoon %d","content":"【广东省气象局】台风红色预警 %d：请留在室内。","scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"red"}}`, i, i)
		return call(t, "POST", s.base+"/api/v1/broadcasts", tok, body)
	}
	completed := func(id string) bool {
		return call(t, "GET", s.base+"/api/v1/broadcasts/"+id, regulator, "").body["status"] == "completed"
	}
	ready := func() (int, map[string]any) {
		r := call(t, "GET", s.base+"/readyz", "", "")
		return r.status, r.body
	}
	await := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > limit {
				_, body := ready()
				t.Fatalf("%s: not within %s; /readyz: %v", what, limit, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}

	var accepted []string
	first := file(0)
	if first.status != 201 {
		t.Fatalf("first filing: %d %v", first.status, first.body)
	}
	accepted = append(accepted, first.body["id"].(string))
	await("the first emergency to complete", 15*time.Second, func() bool { return completed(accepted[0]) })

	ballast := fulldisk.Fill(t, dir)
	if leave > 0 {
		st, err := os.Stat(ballast)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(ballast, st.Size()-leave); err != nil {
			t.Fatal(err)
		}
	}
	var refusedAt time.Time
	for i := 1; i <= 3000 && refusedAt.IsZero(); i++ {
		r := file(i)
		switch r.status {
		case 201:
			accepted = append(accepted, r.body["id"].(string))
		case 503:
			if code := r.body["error"].(map[string]any)["code"]; code != "unavailable" {
				t.Fatalf("503 with code %v, want unavailable: %v", code, r.body)
			}
			refusedAt = time.Now()
			t.Logf("refused with 503 after %d more filings: %v", len(accepted)-1, r.body["error"].(map[string]any)["message"])
		default:
			t.Fatalf("filing on a full disk: %d %v", r.status, r.body)
		}
	}
	if refusedAt.IsZero() {
		t.Fatal("3000 filings on a full disk were all accepted")
	}
	took := await("/readyz to report the full disk", 10*time.Second, func() bool { code, _ := ready(); return code == 503 })
	_, body := ready()
	t.Logf("/readyz 503 %s after the first refusal: %v", took.Round(time.Millisecond), body["reasons"])

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	await("/readyz to recover", 20*time.Second, func() bool { code, _ := ready(); return code == 200 })
	t.Logf("/readyz 200 again %s after space was freed", time.Since(freed).Round(time.Millisecond))
	r := file(1000)
	if r.status != 201 {
		t.Fatalf("filing after recovery: %d %v", r.status, r.body)
	}
	accepted = append(accepted, r.body["id"].(string))
	slowest := time.Duration(0)
	for _, id := range accepted {
		start := time.Now()
		for !completed(id) {
			if time.Since(start) > 20*time.Second {
				b := call(t, "GET", s.base+"/api/v1/broadcasts/"+id, regulator, "").body
				_, body := ready()
				t.Fatalf("emergency %s did not complete within 20 s: providers %v; /readyz %v", id, b["providers"], body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		slowest = max(slowest, time.Since(freed))
	}
	t.Logf("slowest completion %s after space was freed", slowest.Round(time.Millisecond))
	t.Logf("all %d accepted emergencies completed, the last %s after space was freed", len(accepted), time.Since(freed).Round(time.Millisecond))
}
