package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Inboxes and webhooks. Notifications live under org\x00seq, so one
// organisation's are contiguous and newest last; their ids ("N000042")
// carry the global sequence. A notification's key (which fact it tells)
// is indexed under org\x00key, so each fact is stored once. The unread
// count per organisation is kept beside them, so the header's count is
// one read. Webhook jobs live under org\x00seq too: each organisation's
// oldest is the first key after its prefix.

const notificationPrefix = "N"

func formatNotificationID(seq uint64) string { return formatSeq(notificationPrefix, seq) }

func parseNotificationID(id string) (uint64, bool) { return parseSeq(notificationPrefix, id) }

func (t *tx) AddNotification(n *tocsin.Notification, key string) (bool, error) {
	keys := t.btx.Bucket(bucketInboxKeys)
	k := compositeKey(n.Org, []byte(key))
	if keys.Get(k) != nil {
		return false, nil
	}
	seq, err := t.btx.Bucket(bucketInbox).NextSequence()
	if err != nil {
		return false, fmt.Errorf("next notification id: %w", err)
	}
	n.ID = formatNotificationID(seq)
	if err := t.put(bucketInbox, compositeKey(n.Org, u64(seq)), n); err != nil {
		return false, err
	}
	if err := keys.Put(k, []byte(n.ID)); err != nil {
		return false, fmt.Errorf("index notification %s: %w", n.ID, err)
	}
	if !n.Read {
		return true, t.addUnread(n.Org, 1)
	}
	return true, nil
}

func (t *tx) Notification(org, id string) (*tocsin.Notification, error) {
	seq, ok := parseNotificationID(id)
	if !ok || org == "" {
		return nil, notFound("notification", id)
	}
	var n tocsin.Notification
	found, err := t.get(bucketInbox, compositeKey(org, u64(seq)), &n)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("notification", id)
	}
	return &n, nil
}

func (t *tx) PutNotification(n *tocsin.Notification) error {
	old, err := t.Notification(n.Org, n.ID)
	if err != nil {
		return err
	}
	seq, _ := parseNotificationID(n.ID)
	if err := t.put(bucketInbox, compositeKey(n.Org, u64(seq)), n); err != nil {
		return err
	}
	switch {
	case old.Read && !n.Read:
		return t.addUnread(n.Org, 1)
	case !old.Read && n.Read:
		return t.addUnread(n.Org, -1)
	}
	return nil
}

func (t *tx) Notifications(org string, limit int, before string) ([]tocsin.Notification, string, error) {
	var from uint64 = 1<<64 - 1
	if before != "" {
		seq, ok := parseNotificationID(before)
		if !ok {
			return nil, "", tocsin.Errorf(tocsin.CodeInvalid, "malformed cursor %q", before)
		}
		from = seq
	}
	var out []tocsin.Notification
	next := ""
	err := reverseScan(t.btx.Bucket(bucketInbox).Cursor(), compositeKey(org, nil), from, func(seq uint64) (bool, error) {
		if limit > 0 && len(out) == limit {
			next = out[len(out)-1].ID
			return false, nil
		}
		n, err := t.Notification(org, formatNotificationID(seq))
		if err != nil {
			return false, err
		}
		out = append(out, *n)
		return true, nil
	})
	return out, next, err
}

func (t *tx) Unread(org string) (int, error) {
	v := t.btx.Bucket(bucketInboxUnread).Get([]byte(org))
	if len(v) != 8 {
		return 0, nil
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

func (t *tx) addUnread(org string, delta int) error {
	n, _ := t.Unread(org)
	return t.btx.Bucket(bucketInboxUnread).Put([]byte(org), u64(uint64(max(n+delta, 0))))
}

func (t *tx) Webhook(org string) (*tocsin.Webhook, error) {
	return getOne[tocsin.Webhook](t, bucketWebhooks, "webhook of organisation", org)
}

func (t *tx) PutWebhook(w *tocsin.Webhook) error {
	return t.put(bucketWebhooks, []byte(w.Org), w)
}

func (t *tx) DeleteWebhook(org string) error {
	if err := t.btx.Bucket(bucketWebhooks).Delete([]byte(org)); err != nil {
		return fmt.Errorf("delete webhook %s: %w", org, err)
	}
	return nil
}

func (t *tx) PutWebhookJob(j *tocsin.WebhookJob) error {
	if j.Seq == 0 {
		seq, err := t.btx.Bucket(bucketWebhookJobs).NextSequence()
		if err != nil {
			return fmt.Errorf("queue webhook: %w", err)
		}
		j.Seq = seq
	}
	return t.put(bucketWebhookJobs, compositeKey(j.Org, u64(j.Seq)), j)
}

func (t *tx) DeleteWebhookJob(org string, seq uint64) error {
	if err := t.btx.Bucket(bucketWebhookJobs).Delete(compositeKey(org, u64(seq))); err != nil {
		return fmt.Errorf("dequeue webhook %s/%d: %w", org, seq, err)
	}
	return nil
}

func (t *tx) WebhookHeads() ([]tocsin.WebhookJob, error) {
	var out []tocsin.WebhookJob
	c := t.btx.Bucket(bucketWebhookJobs).Cursor()
	for k, v := c.First(); k != nil; {
		org, _, ok := bytes.Cut(k, []byte{0})
		if !ok {
			k, v = c.Next()
			continue
		}
		var j tocsin.WebhookJob
		if err := json.Unmarshal(v, &j); err != nil {
			return nil, fmt.Errorf("decode webhook job %q: %w", k, err)
		}
		out = append(out, j)
		// The next organisation's keys start after org\x01.
		k, v = c.Seek(append(append([]byte{}, org...), 1))
	}
	return out, nil
}

func (t *tx) WebhookQueued(org string) (int, error) {
	prefix := compositeKey(org, nil)
	n := 0
	c := t.btx.Bucket(bucketWebhookJobs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n, nil
}

// inboxBuckets are the buckets this file keeps, created at Open.
var inboxBuckets = [][]byte{bucketInbox, bucketInboxKeys, bucketInboxUnread, bucketWebhooks, bucketWebhookJobs}

var (
	bucketInbox       = []byte("inbox")
	bucketInboxKeys   = []byte("idx_inbox_key")
	bucketInboxUnread = []byte("inbox_unread")
	bucketWebhooks    = []byte("webhooks")
	bucketWebhookJobs = []byte("webhook_jobs")
)
