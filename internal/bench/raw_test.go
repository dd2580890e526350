package bench

import (
	"slices"
	"testing"
)

func TestIDOf(t *testing.T) {
	tests := []struct {
		body, want string
		ok         bool
	}{
		{`{"id":"BC000001"}`, "BC000001", true},
		{`{"id":"BC000002","status":"dispatching","providers":[{"provider":"cmcc"}]}`, "BC000002", true},
		{` { "id" : "r-3" , "x": 1}`, "r-3", true},
		{`{"status":"dispatching","id":"BC000004"}`, "", false}, // every chain puts the id first
		{`{"id":""}`, "", false},
		{`{"id":4}`, "", false},
		{`["id"]`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, err := idOf([]byte(tt.body))
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("idOf(%q) = %q, %v; want %q, ok %v", tt.body, got, err, tt.want, tt.ok)
		}
	}
}

// BenchmarkIDOf reads the id of a 201 as large as Tocsin's.
func BenchmarkIDOf(b *testing.B) {
	body := []byte(`{"id":"BC000001","status":"dispatching","title":"台风红色预警","content":"【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。","scope":["440100"]` +
		`,"providers":[{"provider":"cmcc","name":"China Mobile","regions":["440100"],"status":"queued","recipients":0,"sent":0,"delivered":0,"failed":0,"queued_at":"2026-12-04T08:47:37.486471932+08:00","updated_at":"2026-12-04T08:47:37.486471932+08:00","msg_id":"BC000001.broadcast.cmcc.1262e608e3fdbf96"}` +
		`,{"provider":"cucc","name":"China Unicom","regions":["440100"],"status":"queued","recipients":0,"sent":0,"delivered":0,"failed":0,"queued_at":"2026-12-04T08:47:37.486471932+08:00","updated_at":"2026-12-04T08:47:37.486471932+08:00","msg_id":"BC000001.broadcast.cucc.5c6262f6aea07e55"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := idOf(body); err != nil {
			b.Fatal(err)
		}
	}
}

// Over as many rounds as there are chains, each chain runs in each
// position once, so each follows each other chain equally often.
func TestTurns(t *testing.T) {
	tests := []struct {
		round, chains int
		want          []int
	}{
		{0, 3, []int{0, 1, 2}},
		{1, 3, []int{1, 2, 0}},
		{2, 3, []int{2, 0, 1}},
		{3, 3, []int{0, 1, 2}},
		{4, 1, []int{0}},
	}
	for _, tt := range tests {
		if got := turns(tt.round, tt.chains); !slices.Equal(got, tt.want) {
			t.Errorf("turns(%d, %d) = %v, want %v", tt.round, tt.chains, got, tt.want)
		}
	}
}
