// Package bench measures dispatch paths side by side: the raw durable
// chains built here from the primitives Tocsin uses (raw.go), and whatever
// else offers the same Chain (Tocsin itself, wired by cmd/tocsin). Every
// figure is taken in turns, a block of each chain at a time, so a slow
// spell of a shared disk falls on all of them; what it reports are ratios
// between chains measured in the same run.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// Wait is the longest any one message may take to arrive.
const Wait = 60 * time.Second

// settle is the pause before each chain's turn, so one chain's trailing
// writes (a relay's dequeue, consumers' acks) are not timed on the next.
const settle = 100 * time.Millisecond

// Chain is one way of getting a filing to its providers' consumers.
type Chain struct {
	Name string
	// File sends one filing (to every fan-out provider when fanout is
	// set) and returns once the chain holds it durably (its 201), with
	// its id and when it started.
	File func(ctx context.Context, fanout bool) (id string, start time.Time, err error)
	// Arr records the filings' arrivals at the consumers.
	Arr *Arrivals
	// Providers and Fanout are how many consumers receive an ordinary
	// and a fan-out filing.
	Providers, Fanout int
}

// Arrivals records when each filing reached each consumer, and lets a
// sender wait for the last of its own.
type Arrivals struct {
	mu      sync.Mutex
	seen    map[string]struct{} // id and consumer
	count   map[string]int      // arrivals by id
	waiters map[string]*waiter  // by id
	total   atomic.Int64        // distinct arrivals
	target  int64               // guarded by mu
	all     chan struct{}       // guarded by mu: closed when total reaches target
}

type waiter struct {
	want int
	c    chan time.Time
}

// NewArrivals returns an empty record.
func NewArrivals() *Arrivals {
	return &Arrivals{seen: map[string]struct{}{}, count: map[string]int{}, waiters: map[string]*waiter{}}
}

// Arrived records id's arrival at consumer at t; a redelivery is ignored.
func (a *Arrivals) Arrived(id, consumer string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := id + "\x00" + consumer
	if _, dup := a.seen[key]; dup {
		return
	}
	a.seen[key] = struct{}{}
	a.count[id]++
	if w, ok := a.waiters[id]; ok && a.count[id] >= w.want {
		w.c <- t
		delete(a.waiters, id)
	}
	if n := a.total.Add(1); a.all != nil && n == a.target {
		close(a.all)
	}
}

// Expect returns a channel that gets the time of id's want-th arrival.
func (a *Arrivals) Expect(id string, want int) <-chan time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := make(chan time.Time, 1)
	if a.count[id] >= want {
		c <- time.Now() // already there: only the order of calls is off
	} else {
		a.waiters[id] = &waiter{want: want, c: c}
	}
	return c
}

// ExpectTotal returns a channel closed once n more arrivals have come.
func (a *Arrivals) ExpectTotal(n int) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.all = make(chan struct{})
	a.target = a.total.Load() + int64(n)
	return a.all
}

// Consume acks and records every message of cons, by its broadcast id,
// as arriving at name. Stop the returned context when done.
func Consume(cons jetstream.Consumer, name string, arr *Arrivals) (jetstream.ConsumeContext, error) {
	return cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		arr.Arrived(m.Headers().Get(natsbus.HeaderBroadcastID), name, now)
		_ = m.Ack()
	})
}

// HTTPClient is a client for clients concurrent filers.
func HTTPClient(clients int) *http.Client {
	return &http.Client{
		Timeout:   Wait,
		Transport: &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients},
	}
}

// Post sends body to url and returns the id of what it created (a 201
// with {"id": ...}).
func Post(ctx context.Context, client *http.Client, url, bearer, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, data)
	}
	return idOf(data)
}

// Figures are one chain's results; zero where not measured.
type Figures struct {
	P50, P99   time.Duration // one filing at a time, POST to its last consumer
	Throughput float64       // filings a second, counted at the consumers
	FanoutP50  time.Duration // 201 to the last fan-out consumer
	Fanout     []time.Duration
}

// Latency files n filings per chain one at a time, in blocks taking turns,
// and returns each chain's p50 and p99 from POST to its last consumer.
func Latency(ctx context.Context, chains []Chain, n, blocks int) ([]Figures, error) {
	samples := make([][]time.Duration, len(chains))
	for b := range blocks {
		for _, i := range turns(b, len(chains)) {
			c := chains[i]
			time.Sleep(settle)
			for range max(1, n/blocks) {
				id, start, err := c.File(ctx, false)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", c.Name, err)
				}
				at, err := await(c.Arr.Expect(id, c.Providers), c.Name, id)
				if err != nil {
					return nil, err
				}
				samples[i] = append(samples[i], at.Sub(start))
			}
		}
	}
	out := make([]Figures, len(chains))
	for i, s := range samples {
		out[i].P50, out[i].P99 = Percentile(s, 50), Percentile(s, 99)
	}
	return out, nil
}

// Throughput files n filings per chain from clients concurrent filers, in
// rounds taking turns, and returns filings a second counted at the
// consumers: from the first POST to the last arrival of each round.
func Throughput(ctx context.Context, chains []Chain, n, rounds, clients int) ([]float64, error) {
	elapsed := make([]time.Duration, len(chains))
	per := max(1, n/rounds)
	for r := range rounds {
		for _, i := range turns(r, len(chains)) {
			c := chains[i]
			time.Sleep(settle)
			d, err := burst(ctx, c, per, clients)
			if err != nil {
				return nil, err
			}
			elapsed[i] += d
		}
	}
	out := make([]float64, len(chains))
	for i := range chains {
		out[i] = float64(per*rounds) / elapsed[i].Seconds()
	}
	return out, nil
}

func burst(ctx context.Context, c Chain, n, clients int) (time.Duration, error) {
	all := c.Arr.ExpectTotal(n * c.Providers)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, _, err := c.File(ctx, false); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return 0, fmt.Errorf("%s: %w", c.Name, *err)
	}
	select {
	case <-all:
	case <-time.After(Wait):
		return 0, fmt.Errorf("%s: only %d of %d dispatches arrived", c.Name, c.Arr.total.Load(), n*c.Providers)
	}
	return time.Since(start), nil
}

// Fanout files rounds fan-out filings per chain, taking turns, and
// returns the times from each 201 to its last consumer.
func Fanout(ctx context.Context, chains []Chain, rounds int) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(chains))
	for r := range rounds {
		for _, i := range turns(r, len(chains)) {
			c := chains[i]
			time.Sleep(4 * settle) // wide fan-out leaves more acks behind
			id, _, err := c.File(ctx, true)
			created := time.Now()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			at, err := await(c.Arr.Expect(id, c.Fanout), c.Name, id)
			if err != nil {
				return nil, err
			}
			out[i] = append(out[i], at.Sub(created))
		}
	}
	return out, nil
}

// turns is the order the chains take in round r. The order matters: a
// wide fan-out leaves its consumers' state files still being written and
// synced (a file each, in nats-server) while the next chain's round
// begins, and with a fixed order the same chain always met that. So each
// round starts one chain further on, which puts each chain in each
// position equally often, and every other run of that many rounds goes
// the other way round, without which a rotation keeps every chain behind
// the same one: over 2×chains rounds each of three chains (the bench's)
// follows each of the others equally often.
func turns(r, chains int) []int {
	order := make([]int, chains)
	backwards := (r/chains)%2 == 1 // so r >= chains > k, and r-k > 0
	for k := range order {
		if backwards {
			order[k] = (r - k) % chains
		} else {
			order[k] = (r + k) % chains
		}
	}
	return order
}

func await(c <-chan time.Time, chain, id string) (time.Time, error) {
	select {
	case t := <-c:
		return t, nil
	case <-time.After(Wait):
		return time.Time{}, fmt.Errorf("%s: %s did not reach all its consumers within %s", chain, id, Wait)
	}
}

// Percentile returns the p-th percentile of samples (nearest rank).
func Percentile(samples []time.Duration, p int) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// Ms formats d in milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
