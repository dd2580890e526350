// Package provider is what an SMS provider embeds to take part in Tocsin:
// it connects to NATS with the provider's credentials, pulls the provider's
// dispatches from its durable consumer, drops redeliveries, honours stops
// (even one that overtakes its original), and publishes receipts.
//
//	c, err := provider.Connect(ctx, provider.Config{URL: url, ID: "cmcc", User: "cmcc", Password: pw})
//	...
//	err = c.Run(ctx, func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
//		// send d.Content to subscribers in d.Regions, calling r.Progress as you go
//		return r.Done(ctx, sent, delivered, failed)
//	})
package provider

import "time"

// Dispatch types.
const (
	TypeBroadcast = "broadcast"
	TypeUpdate    = "update"
	TypeStop      = "stop"
)

// Dispatch is one message from Tocsin to this provider.
type Dispatch struct {
	BroadcastID string     `json:"broadcast_id"`
	Type        string     `json:"type"`
	SenderCode  string     `json:"sender_code"`
	Agency      string     `json:"agency"`
	Content     string     `json:"content"`
	Regions     []string   `json:"regions"`
	SendAt      time.Time  `json:"send_at"`
	SendUntil   *time.Time `json:"send_until,omitempty"`
	Emergency   *Emergency `json:"emergency,omitempty"`
	Exercise    bool       `json:"exercise"`
	Charge      string     `json:"charge"`
	References  string     `json:"references,omitempty"`
}

// Emergency describes an emergency broadcast.
type Emergency struct {
	Type  string `json:"type"`
	Event string `json:"event"`
	Level string `json:"level"`
}

// Receipt statuses.
const (
	StatusReceived  = "received"
	StatusSending   = "sending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Receipt reports progress on one broadcast back to Tocsin.
type Receipt struct {
	BroadcastID string `json:"broadcast_id"`
	Status      string `json:"status"`
	Recipients  int    `json:"recipients"`
	Sent        int    `json:"sent"`
	Delivered   int    `json:"delivered"`
	Failed      int    `json:"failed"`
	Detail      string `json:"detail,omitempty"`
}
