package provider

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Simulation is a Handler that pretends to send: it works through a number
// of recipients per region at a fixed rate, failing a fixed share of them,
// and reports progress as it goes. Tocsin's demo and tests use it; a real
// provider replaces it with its SMS gateway.
type Simulation struct {
	RecipientsPerRegion int
	PerSecond           int           // sending rate
	FailureRatio        float64       // 0..1
	Tick                time.Duration // how often progress is reported
}

// DefaultSimulation finishes a one-region broadcast in under a second.
var DefaultSimulation = Simulation{RecipientsPerRegion: 2000, PerSecond: 5000, FailureRatio: 0.01, Tick: 200 * time.Millisecond}

// Handle implements Handler.
func (s Simulation) Handle(ctx context.Context, d Dispatch, r *Reporter) error {
	if d.Exercise {
		// A drill exercises the path, not the public's phones.
		return r.Done(ctx, 0, 0, 0, 0, "exercise: not sent to the public")
	}
	recipients := s.RecipientsPerRegion * len(d.Regions)
	tick := s.Tick
	if tick <= 0 {
		tick = 200 * time.Millisecond
	}
	perTick := max(1, int(float64(s.PerSecond)*tick.Seconds()))
	t := time.NewTicker(tick)
	defer t.Stop()
	sent := 0
	for sent < recipients {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		sent = min(recipients, sent+perTick)
		failed := int(math.Round(float64(sent) * s.FailureRatio))
		if sent < recipients {
			if err := r.Progress(ctx, recipients, sent, sent-failed, failed); err != nil {
				return err
			}
		}
	}
	failed := int(math.Round(float64(recipients) * s.FailureRatio))
	return r.Done(ctx, recipients, recipients, recipients-failed, failed,
		fmt.Sprintf("simulated: %d recipients in %d region(s)", recipients, len(d.Regions)))
}
