// Package wire is Tocsin's NATS contract: the JSON of a dispatch sent to a
// provider and of a receipt a provider sends back. It depends on nothing,
// so the coordinator's domain and any provider implementation share one
// definition.
package wire

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
