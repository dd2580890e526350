// Package provider is what an SMS provider embeds to take part in Tocsin:
// it connects to NATS with the provider's credentials, pulls the provider's
// dispatches from its durable consumer, drops redeliveries, honours stops
// (even one that overtakes its original), and publishes receipts.
//
//	c, err := provider.Connect(ctx, provider.Config{URL: url, ID: "cmcc", CredsFile: "cmcc.creds"})
//	...
//	err = c.Run(ctx, func(ctx context.Context, d provider.Dispatch, r *provider.Reporter) error {
//		// send d.Content to subscribers in d.Regions, calling r.Progress as you go
//		return r.Done(ctx, recipients, sent, delivered, failed, "")
//	})
package provider

import "github.com/tocsin-dev/tocsin/provider/wire"

// The message types are those of package wire.
type (
	Dispatch  = wire.Dispatch
	Emergency = wire.Emergency
	Receipt   = wire.Receipt
)

// Dispatch types and receipt statuses, as in package wire.
const (
	TypeBroadcast   = wire.TypeBroadcast
	TypeUpdate      = wire.TypeUpdate
	TypeStop        = wire.TypeStop
	StatusReceived  = wire.StatusReceived
	StatusSending   = wire.StatusSending
	StatusDelivered = wire.StatusDelivered
	StatusFailed    = wire.StatusFailed
)
