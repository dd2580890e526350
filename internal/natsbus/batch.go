package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// JetStream's atomic batch publish (nats-server 2.12+, a stream with
// allow_atomic): every message carries the batch's id and its place in it,
// the last one also the commit marker and a reply subject; the server
// stages the others and stores all or none, with one sync, answering the
// commit with one PubAck for the batch. The headers and limits are
// nats-server's (server/stream.go, server/jetstream_batching.go).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
	// MaxAtomicBatch is the most messages one atomic batch may hold.
	MaxAtomicBatch = 1000
)

// JetStream's error codes for a refused atomic batch that the relay acts
// on (server/jetstream_errors_generated.go).
const (
	// errCodeBatchDuplicate: a message's Nats-Msg-Id is in the duplicate
	// window (or twice in the batch); nothing of the batch was stored.
	errCodeBatchDuplicate = 10201
	// errCodeBatchDisabled: the stream does not allow atomic publish.
	errCodeBatchDisabled = 10174
)

// BatchAck is JetStream's acknowledgement of a whole atomic batch: the
// stream sequence of its last message and how many it stored.
type BatchAck struct {
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	Batch    string `json:"batch"`
	Count    int    `json:"count"`
}

// BatchError is JetStream refusing an atomic batch: none of its messages
// were stored.
type BatchError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("atomic batch refused: %s (%d/%d)", e.Description, e.Code, e.ErrCode)
}

// IsBatchDuplicate reports whether err is an atomic batch refused because
// one of its messages is a duplicate.
func IsBatchDuplicate(err error) bool {
	var be *BatchError
	return errors.As(err, &be) && be.ErrCode == errCodeBatchDuplicate
}

// PublishAtomic publishes msgs (at least two, at most MaxAtomicBatch) as
// one atomic batch with the id batchID (unique, at most 64 bytes) and
// waits, until ctx ends, for the batch's PubAck: the only evidence that
// any of them was stored. The messages' headers are added to; ids and
// other JetStream headers they carry are checked as for a single publish.
func PublishAtomic(ctx context.Context, nc *nats.Conn, batchID string, msgs []*nats.Msg) (BatchAck, error) {
	if len(msgs) < 2 || len(msgs) > MaxAtomicBatch {
		return BatchAck{}, fmt.Errorf("atomic batch of %d messages: between 2 and %d", len(msgs), MaxAtomicBatch)
	}
	last := len(msgs) - 1
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(headerBatchID, batchID)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i == last {
			break
		}
		// Staged without a reply: only the commit is answered. A message
		// the server refuses leaves a gap the commit is refused for.
		if err := nc.PublishMsg(m); err != nil {
			return BatchAck{}, fmt.Errorf("atomic batch %s: message %d: %w", batchID, i+1, err)
		}
	}
	msgs[last].Header.Set(headerBatchCommit, "1")
	resp, err := nc.RequestMsgWithContext(ctx, msgs[last])
	if err != nil {
		return BatchAck{}, fmt.Errorf("atomic batch %s: commit: %w", batchID, err)
	}
	var reply struct {
		BatchAck
		Error *BatchError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &reply); err != nil {
		return BatchAck{}, fmt.Errorf("atomic batch %s: unreadable PubAck %q: %w", batchID, resp.Data, err)
	}
	switch {
	case reply.Error != nil:
		return BatchAck{}, reply.Error
	case reply.Count != len(msgs) || reply.Batch != batchID:
		return BatchAck{}, fmt.Errorf("atomic batch %s: PubAck for %d messages of batch %q, sent %d", batchID, reply.Count, reply.Batch, len(msgs))
	}
	return reply.BatchAck, nil
}
