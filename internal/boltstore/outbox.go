package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// An outbox entry is read by the relay every round and by nothing else in
// the hot path, so it is laid out to be read without decoding: a format
// byte, the provider, message id, broadcast id and type as
// length-prefixed strings, the enqueue time in Unix nanoseconds (0 for
// none), then the dispatch's JSON as it is published. The key is the
// entry's sequence number.
//
// Entries written before this format are JSON objects, and are read as
// such until the relay has published them.
const outboxFormat = 1

func encodeOutbox(m tocsin.OutboxMessage) []byte {
	n := 1 + 4*binary.MaxVarintLen64 + binary.MaxVarintLen64 + len(m.Provider) + len(m.MsgID) + len(m.BroadcastID) + len(m.Type) + len(m.Payload)
	buf := make([]byte, 0, n)
	buf = append(buf, outboxFormat)
	for _, s := range []string{m.Provider, m.MsgID, m.BroadcastID, m.Type} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	var at int64
	if !m.EnqueuedAt.IsZero() {
		at = m.EnqueuedAt.UnixNano()
	}
	buf = binary.AppendVarint(buf, at)
	return append(buf, m.Payload...)
}

// decodeOutbox reads entry seq. The message's strings and payload are
// copied out of data, which bbolt owns.
func decodeOutbox(seq uint64, data []byte) (tocsin.OutboxMessage, error) {
	if len(data) > 0 && data[0] == '{' {
		return decodeOutboxJSON(seq, data)
	}
	bad := func(what string) (tocsin.OutboxMessage, error) {
		return tocsin.OutboxMessage{}, fmt.Errorf("decode outbox/%d: %s", seq, what)
	}
	if len(data) == 0 || data[0] != outboxFormat {
		return bad("unknown format")
	}
	body := data[1:]
	var bounds [4][2]int // where each string lies in body
	off := 0
	for i := range bounds {
		n, w := binary.Uvarint(body[off:])
		if w <= 0 || n > uint64(len(body)-off-w) {
			return bad("truncated")
		}
		off += w
		bounds[i] = [2]int{off, off + int(n)}
		off += int(n)
	}
	at, w := binary.Varint(body[off:])
	if w <= 0 {
		return bad("truncated")
	}
	// Two copies out of bbolt's memory: the strings, as slices of one,
	// and the payload.
	head := string(body[:off])
	var fields [4]string
	for i, b := range bounds {
		fields[i] = head[b[0]:b[1]]
	}
	payload := bytes.Clone(body[off+w:])
	m := tocsin.OutboxMessage{Seq: seq, Provider: fields[0], MsgID: fields[1], BroadcastID: fields[2], Type: fields[3], Payload: payload}
	if at != 0 {
		m.EnqueuedAt = time.Unix(0, at).In(tocsin.Shanghai)
	}
	return m, nil
}

// decodeOutboxJSON reads an entry of the earlier, JSON format.
func decodeOutboxJSON(seq uint64, data []byte) (tocsin.OutboxMessage, error) {
	var old struct {
		Provider   string          `json:"provider"`
		MsgID      string          `json:"msg_id"`
		EnqueuedAt time.Time       `json:"enqueued_at"`
		Dispatch   json.RawMessage `json:"dispatch"`
	}
	var head struct {
		BroadcastID string `json:"broadcast_id"`
		Type        string `json:"type"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return tocsin.OutboxMessage{}, fmt.Errorf("decode outbox/%d: %w", seq, err)
	}
	if err := json.Unmarshal(old.Dispatch, &head); err != nil {
		return tocsin.OutboxMessage{}, fmt.Errorf("decode outbox/%d dispatch: %w", seq, err)
	}
	return tocsin.OutboxMessage{Seq: seq, Provider: old.Provider, MsgID: old.MsgID, BroadcastID: head.BroadcastID, Type: head.Type,
		EnqueuedAt: old.EnqueuedAt, Payload: []byte(old.Dispatch)}, nil
}
