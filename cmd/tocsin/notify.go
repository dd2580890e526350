package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tocsin-dev/tocsin/internal/webhook"
)

// startNotifications starts the loops that tell departments: the webhook
// deliverer, and the hourly check for post-hoc reports gone overdue.
func (c *coordinator) startNotifications() {
	d := &webhook.Deliverer{
		Service: c.service, Log: c.log,
		Backoff: c.cfg.WebhookBackoff, MaxBackoff: c.cfg.WebhookMaxBackoff,
		Poll:  min(time.Second, max(c.cfg.WebhookBackoff/2, 10*time.Millisecond)),
		Clock: c.clock.Now,
	}
	c.loops.Go(c.loopCtx, "webhook-deliverer", d.Run)
	c.loops.Go(c.loopCtx, "post-hoc-overdue", c.notifyOverdue)
}

// notifyOverdue tells departments of post-hoc reports past due, at start
// and then every hour; each broadcast's department is told once.
func (c *coordinator) notifyOverdue(ctx context.Context) error {
	for {
		n, err := c.service.NotifyOverdue(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Error("overdue post-hoc check failed", slog.Any("error", err))
		case n > 0:
			c.log.Info("departments told of overdue post-hoc reports", slog.Int("count", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}
