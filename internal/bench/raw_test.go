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

// Over 2×chains rounds each chain takes each position equally often and,
// for the bench's three chains (or two), follows each of the others
// within a round equally often.
func TestTurns(t *testing.T) {
	tests := []struct {
		round, chains int
		want          []int
	}{
		{0, 3, []int{0, 1, 2}},
		{1, 3, []int{1, 2, 0}},
		{2, 3, []int{2, 0, 1}},
		{3, 3, []int{0, 2, 1}},
		{4, 3, []int{1, 0, 2}},
		{5, 3, []int{2, 1, 0}},
		{6, 3, []int{0, 1, 2}},
		{4, 1, []int{0}},
	}
	for _, tt := range tests {
		if got := turns(tt.round, tt.chains); !slices.Equal(got, tt.want) {
			t.Errorf("turns(%d, %d) = %v, want %v", tt.round, tt.chains, got, tt.want)
		}
	}
	for _, chains := range []int{2, 3} {
		position := map[[2]int]int{} // chain, position
		follows := map[[2]int]int{}  // chain, the one before it
		for r := range 2 * chains {
			order := turns(r, chains)
			for k, c := range order {
				position[[2]int{c, k}]++
				if k > 0 {
					follows[[2]int{c, order[k-1]}]++
				}
			}
		}
		for c := range chains {
			for other := range chains {
				if n := position[[2]int{c, other}]; n != 2 {
					t.Errorf("%d chains: chain %d in position %d %d times in %d rounds, want 2", chains, c, other, n, 2*chains)
				}
				if n := follows[[2]int{c, other}]; other != c && n != 2 {
					t.Errorf("%d chains: chain %d followed %d %d times in %d rounds, want 2", chains, c, other, n, 2*chains)
				}
			}
		}
	}
}
