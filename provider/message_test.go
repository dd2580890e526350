package provider_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/provider"
)

// keys marshals v and returns its top-level JSON object keys, sorted, and
// the object itself.
func keys(t *testing.T, v any) ([]string, map[string]json.RawMessage) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(m)), m
}

func sorted(s ...string) []string { return slices.Sorted(slices.Values(s)) }

// The field names below are copied from DESIGN.md, section NATS.
func TestDispatchJSONFieldNames(t *testing.T) {
	at := time.Date(2026, 7, 1, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	until := at.Add(2 * time.Hour)
	tests := []struct {
		name string
		d    provider.Dispatch
		want []string
	}{
		{
			name: "stop of an emergency with a send window",
			d: provider.Dispatch{
				BroadcastID: "BC000002", Type: provider.TypeStop, SenderCode: "12379440", Agency: "Guangdong Meteorological Service",
				Content: "台风红色预警", Regions: []string{"440100"}, SendAt: at, SendUntil: &until,
				Emergency: &provider.Emergency{Type: "natural_disaster", Event: "typhoon", Level: "red"},
				Exercise:  true, Charge: "free", References: "BC000002",
			},
			want: sorted("broadcast_id", "type", "sender_code", "agency", "content", "regions", "send_at", "send_until",
				"emergency", "exercise", "charge", "references"),
		},
		{
			name: "ordinary broadcast",
			d: provider.Dispatch{
				BroadcastID: "BC000001", Type: provider.TypeBroadcast, SenderCode: "12379440", Agency: "Guangdong Meteorological Service",
				Content: "防灾减灾宣传", Regions: []string{"440100", "440300"}, SendAt: at, Charge: "free",
			},
			// exercise and charge are always present; the optional parts
			// are absent rather than null.
			want: sorted("broadcast_id", "type", "sender_code", "agency", "content", "regions", "send_at", "exercise", "charge"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, m := keys(t, tt.d)
			if !slices.Equal(got, tt.want) {
				t.Errorf("dispatch fields %v, want %v", got, tt.want)
			}
			if e, ok := m["emergency"]; ok {
				var em map[string]any
				if err := json.Unmarshal(e, &em); err != nil {
					t.Fatal(err)
				}
				if got, want := slices.Sorted(maps.Keys(em)), sorted("type", "event", "level"); !slices.Equal(got, want) {
					t.Errorf("emergency fields %v, want %v", got, want)
				}
			}
			var sendAt string
			if err := json.Unmarshal(m["send_at"], &sendAt); err != nil {
				t.Fatalf("send_at %s: %v", m["send_at"], err)
			}
			if _, err := time.Parse(time.RFC3339, sendAt); err != nil {
				t.Errorf("send_at %q is not RFC 3339: %v", sendAt, err)
			}
		})
	}
}

func TestReceiptJSONFieldNames(t *testing.T) {
	got, _ := keys(t, provider.Receipt{BroadcastID: "BC000001", Status: provider.StatusFailed, Recipients: 10, Sent: 5, Delivered: 4, Failed: 1, Detail: "gateway down"})
	if want := sorted("broadcast_id", "status", "recipients", "sent", "delivered", "failed", "detail"); !slices.Equal(got, want) {
		t.Errorf("receipt fields %v, want %v", got, want)
	}
	// Counts are sent even when zero: "received" says 0 sent, not "unknown".
	got, _ = keys(t, provider.Receipt{BroadcastID: "BC000001", Status: provider.StatusReceived})
	if want := sorted("broadcast_id", "status", "recipients", "sent", "delivered", "failed"); !slices.Equal(got, want) {
		t.Errorf("receipt fields %v, want %v", got, want)
	}
}

// A provider written in another language works from DESIGN.md alone: the
// documented JSON decodes into the types with no field left over.
func TestDocumentedJSONDecodes(t *testing.T) {
	strict := func(data string, v any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader([]byte(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
	}
	var d provider.Dispatch
	strict(`{"broadcast_id":"BC000002","type":"update","sender_code":"12379440","agency":"Guangdong Meteorological Service",
		"content":"台风橙色预警","regions":["440100"],"send_at":"2026-07-01T09:00:00+08:00","send_until":"2026-07-01T11:00:00+08:00",
		"emergency":{"type":"natural_disaster","event":"typhoon","level":"orange"},"exercise":false,"charge":"free","references":"BC000001"}`, &d)
	if d.Type != provider.TypeUpdate || d.References != "BC000001" || d.SendUntil == nil || d.Emergency == nil ||
		d.Emergency.Level != "orange" || d.Charge != "free" || !slices.Equal(d.Regions, []string{"440100"}) {
		t.Errorf("decoded dispatch %+v", d)
	}
	var r provider.Receipt
	strict(`{"broadcast_id":"BC000001","status":"delivered","recipients":100,"sent":100,"delivered":99,"failed":1,"detail":"done"}`, &r)
	if r != (provider.Receipt{BroadcastID: "BC000001", Status: provider.StatusDelivered, Recipients: 100, Sent: 100, Delivered: 99, Failed: 1, Detail: "done"}) {
		t.Errorf("decoded receipt %+v", r)
	}
}

func TestContractNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{provider.TypeBroadcast, "broadcast"}, {provider.TypeUpdate, "update"}, {provider.TypeStop, "stop"},
		{provider.StatusReceived, "received"}, {provider.StatusSending, "sending"},
		{provider.StatusDelivered, "delivered"}, {provider.StatusFailed, "failed"},
		{provider.DispatchStream, "TOCSIN_DISPATCH"}, {provider.DispatchStream, natsbus.DispatchStream},
		{provider.ReceiptPrefix, "tocsin.receipt."}, {provider.ReceiptPrefix, natsbus.ReceiptPrefix},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
