package boltstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestDecodeOutbox(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 30, 0, 5, tocsin.Shanghai)
	payload := []byte(`{"broadcast_id":"BC000007","type":"stop","charge":"free"}`)
	want := tocsin.OutboxMessage{Seq: 7, Provider: "cmcc", MsgID: "BC000007.stop.cmcc.0123456789abcdef",
		BroadcastID: "BC000007", Type: "stop", EnqueuedAt: at, Payload: payload}
	current := encodeOutbox(want)
	for _, tc := range []struct {
		name string
		data []byte
		want tocsin.OutboxMessage
		bad  bool
	}{
		{"current", current, want, false},
		{"no enqueue time", encodeOutbox(tocsin.OutboxMessage{Provider: "cucc", Payload: []byte("{}")}),
			tocsin.OutboxMessage{Seq: 7, Provider: "cucc", Payload: []byte("{}")}, false},
		// As the store wrote an entry before it held the payload encoded.
		{"earlier JSON", []byte(`{"seq":7,"provider":"cmcc","msg_id":"BC000007.stop.cmcc.0123456789abcdef","enqueued_at":"2026-12-02T09:30:00.000000005+08:00","dispatch":{"broadcast_id":"BC000007","type":"stop","charge":"free"}}`),
			want, false},
		{"earlier JSON, no time", []byte(`{"seq":7,"provider":"cmcc","msg_id":"m","dispatch":{"broadcast_id":"BC1","type":"broadcast"}}`),
			tocsin.OutboxMessage{Seq: 7, Provider: "cmcc", MsgID: "m", BroadcastID: "BC1", Type: "broadcast",
				Payload: []byte(`{"broadcast_id":"BC1","type":"broadcast"}`)}, false},
		{"empty", nil, tocsin.OutboxMessage{}, true},
		{"unknown format", append([]byte{9}, current[1:]...), tocsin.OutboxMessage{}, true},
		{"truncated in a string", current[:8], tocsin.OutboxMessage{}, true},
		{"truncated before the time", current[:1+1+4+1+35+1+8+1+4], tocsin.OutboxMessage{}, true},
		{"broken JSON", []byte(`{"provider":`), tocsin.OutboxMessage{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeOutbox(7, tc.data)
			if (err != nil) != tc.bad {
				t.Fatalf("error %v, want one: %v", err, tc.bad)
			}
			if !tc.bad && !sameOutbox(got, tc.want) {
				t.Errorf("decoded %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

// The relay keeps what it read past the transaction: nothing decoded may
// share bbolt's memory.
func TestDecodeOutboxCopies(t *testing.T) {
	data := encodeOutbox(tocsin.OutboxMessage{Provider: "cmcc", MsgID: "m", Payload: []byte(`{"x":1}`)})
	m, err := decodeOutbox(1, data)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	if m.Provider != "cmcc" || m.MsgID != "m" || string(m.Payload) != `{"x":1}` {
		t.Errorf("decoded message changed with the page under it: %+v", m)
	}
}

func FuzzDecodeOutbox(f *testing.F) {
	f.Add(encodeOutbox(tocsin.OutboxMessage{Provider: "cmcc", MsgID: "m", BroadcastID: "BC1", Type: "broadcast",
		EnqueuedAt: time.Unix(1, 0), Payload: []byte("{}")}))
	f.Add([]byte{outboxFormat})
	f.Add([]byte(`{"provider":"cmcc","dispatch":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeOutbox(1, data)
		if err != nil || data[0] == '{' {
			return
		}
		// Whatever decodes encodes again to the same bytes.
		if again := encodeOutbox(m); !bytes.Equal(again, data) {
			if back, err := decodeOutbox(1, again); err != nil || !sameOutbox(back, m) {
				t.Fatalf("%+v encoded again reads as %+v, %v", m, back, err)
			}
		}
	})
}

func sameOutbox(a, b tocsin.OutboxMessage) bool {
	return a.Seq == b.Seq && a.Provider == b.Provider && a.MsgID == b.MsgID && a.BroadcastID == b.BroadcastID &&
		a.Type == b.Type && a.EnqueuedAt.Equal(b.EnqueuedAt) && bytes.Equal(a.Payload, b.Payload)
}
