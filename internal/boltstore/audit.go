package boltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The audit trail is an append-only bucket of entries keyed by sequence,
// each hash-chained to the one before (auditcodec.go has the two stored
// forms), so changing a byte of any entry, or of any broadcast record
// (whose hash the latest entry about it carries), breaks a link that
// VerifyAudit finds.

var auditHeadKey = []byte("audit_head") // meta: hex hash of the last entry

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (t *tx) Audit(e tocsin.AuditEntry) error {
	b := t.btx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if seq, isBroadcast := parseID(e.Target); isBroadcast {
		// Indexed and verified under the id as stored: BC1 and BC000001
		// are one broadcast, and one trail.
		e.Target = formatID(seq)
		// The state once per transaction and target; a later entry of the
		// transaction says "as before" rather than repeat it (a receipt
		// batch wrote the same hash five times over).
		switch state := t.written[seq]; {
		case state != "" && state == t.stated[seq]:
			e.StateHash = stateAsBefore
		default:
			e.StateHash, t.stated[seq] = state, state
		}
	}
	if !t.headRead {
		t.auditHead, t.headRead = string(t.btx.Bucket(bucketMeta).Get(auditHeadKey)), true
	}
	value, hash, err := encodeAudit(seq, t.auditHead, e)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	key := u64(seq)
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := t.btx.Bucket(bucketAuditByTarget).Put(compositeKey(e.Target, key), nil); err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	t.auditHead, t.headMoved = hash, true
	return nil
}

// flush stores what the transaction holds back until its updates have
// run: the trail's new head. The writer calls it before committing.
func (t *tx) flush() error {
	if !t.headMoved {
		return nil
	}
	if err := t.btx.Bucket(bucketMeta).Put(auditHeadKey, []byte(t.auditHead)); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return nil
}

func (t *tx) Timeline(target string) ([]tocsin.AuditEntry, error) {
	if seq, isBroadcast := parseID(target); isBroadcast {
		target = formatID(seq) // as Audit files it
	}
	var out []tocsin.AuditEntry
	audit := t.btx.Bucket(bucketAudit)
	state := ""
	err := t.eachAuditKey(target, func(seq uint64) error {
		prev := ""
		if seq > 1 {
			prev = storedHash(audit.Get(u64(seq - 1)))
		}
		e, err := decodeAudit(seq, prev, audit.Get(u64(seq)))
		if err == nil && e.Target != target {
			err = fmt.Errorf("it is about %s", e.Target)
		}
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", seq, err)
		}
		state = resolveState(&e, state)
		out = append(out, e)
		return nil
	})
	return out, err
}

// resolveState gives e the state hash it stands for, the last one stated
// about its target being last, and returns the last one after e.
func resolveState(e *tocsin.AuditEntry, last string) string {
	if e.StateHash == stateAsBefore {
		e.StateHash = last
	}
	if e.StateHash != "" {
		return e.StateHash
	}
	return last
}

// eachAuditKey calls fn with the sequence of every entry about target,
// oldest first.
func (t *tx) eachAuditKey(target string, fn func(seq uint64) error) error {
	prefix := compositeKey(target, nil)
	c := t.btx.Bucket(bucketAuditByTarget).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := fn(binary.BigEndian.Uint64(k[len(prefix):])); err != nil {
			return err
		}
	}
	return nil
}

// history is the history of broadcast id as its audit entries hold it.
// Entries in the first stored form never carry history events: the
// records of that time keep their history themselves.
func (t *tx) history(id string) ([]tocsin.Event, error) {
	var events []tocsin.Event
	audit := t.btx.Bucket(bucketAudit)
	err := t.eachAuditKey(id, func(seq uint64) error {
		value := audit.Get(u64(seq))
		switch {
		case len(value) == 0:
			return fmt.Errorf("history of %s: audit entry %d is missing", id, seq)
		case value[0] != auditCompact, !isEvent(value):
			return nil // receipts, published dispatches: not decoded
		}
		e, err := decodeCompactBody(value)
		if err == nil && e.Target != id {
			err = fmt.Errorf("it is about %s", e.Target)
		}
		if err != nil {
			return fmt.Errorf("history of %s: audit entry %d: %w", id, seq, err)
		}
		events = append(events, e.HistoryEvent())
		return nil
	})
	return events, err
}

// indexed reports whether b holds key (whose value is empty, which Get
// cannot tell from a missing key).
func indexed(b *bolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// DeleteBroadcast removes a broadcast and its index entries.
func (t *tx) DeleteBroadcast(id string) error {
	seq, ok := parseID(id)
	if !ok {
		return notFound("broadcast", id)
	}
	key := u64(seq)
	was, err := t.storedIndexes(seq, id)
	if err != nil {
		return err
	}
	if was == nil {
		return notFound("broadcast", id)
	}
	if err := t.reindex(was, nil); err != nil {
		return err
	}
	delete(t.written, seq)
	delete(t.histories, seq)
	t.rememberIndexes(seq, nil)
	return t.btx.Bucket(bucketBroadcasts).Delete(key)
}

// BrokenLink is the first place VerifyAudit found the trail or a record
// not to match.
type BrokenLink struct {
	Seq    uint64 // the entry, or 0 for a record with no entry to blame
	Target string
	Reason string
}

func (b *BrokenLink) Error() string {
	if b.Seq == 0 {
		return fmt.Sprintf("record %s: %s", b.Target, b.Reason)
	}
	return fmt.Sprintf("audit entry %d (%s): %s", b.Seq, b.Target, b.Reason)
}

// AuditReport summarises a verification that found nothing wrong.
type AuditReport struct {
	Entries    int
	Broadcasts int
	Head       string
}

// VerifyAudit walks the audit trail of the store at path (which must not
// be open elsewhere) and checks every link and every broadcast record
// against the latest entry about it. It returns a *BrokenLink for the
// first mismatch.
func VerifyAudit(path string) (AuditReport, error) {
	var rep AuditReport
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return rep, fmt.Errorf("open %s: locked by a running tocsin; stop it first", path)
	}
	if err != nil {
		return rep, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(btx *bolt.Tx) error {
		audit := btx.Bucket(bucketAudit)
		if audit == nil {
			return &BrokenLink{Reason: "the store has no audit trail"}
		}
		type last struct {
			seq    uint64
			action string
			state  string
		}
		byTarget := btx.Bucket(bucketAuditByTarget)
		latest := map[string]last{}
		stated := map[string]string{} // the last state hash stated per target
		prev := ""
		c := audit.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			e, err := decodeAudit(seq, prev, v)
			if err != nil {
				return &BrokenLink{Seq: seq, Target: e.Target, Reason: err.Error()}
			}
			if e.Seq != seq {
				return &BrokenLink{Seq: seq, Target: e.Target, Reason: fmt.Sprintf("entry says it is %d", e.Seq)}
			}
			if e.Prev != prev {
				return &BrokenLink{Seq: seq, Target: e.Target, Reason: "does not link to the entry before it"}
			}
			prev = e.Hash
			rep.Entries++
			// The target index is what timelines and histories are read
			// through: an entry left out of it, or listed under another
			// target, would hide or lend an event unseen by the chain.
			if !indexed(byTarget, compositeKey(e.Target, k)) {
				return &BrokenLink{Seq: seq, Target: e.Target, Reason: "missing from the index of entries by target"}
			}
			stated[e.Target] = resolveState(&e, stated[e.Target])
			// Only entries made where the record was written (or removed)
			// say what it must look like; a dispatch_published does not.
			if _, ok := parseID(e.Target); ok && (e.StateHash != "" || e.Action == tocsin.AuditPurged) {
				latest[e.Target] = last{seq: seq, action: e.Action, state: e.StateHash}
			}
		}
		if head := string(btx.Bucket(bucketMeta).Get(auditHeadKey)); head != prev {
			return &BrokenLink{Reason: "the trail's head does not match its last entry (entries removed?)"}
		}
		// Every entry is indexed under its own target (above), so one key
		// more than there are entries lists an entry under a target it is
		// not about.
		if n := byTarget.Stats().KeyN; n != rep.Entries {
			return &BrokenLink{Reason: fmt.Sprintf("the index of entries by target has %d keys for %d entries", n, rep.Entries)}
		}
		rep.Head = prev
		seen := map[string]bool{}
		bc := btx.Bucket(bucketBroadcasts).Cursor()
		for k, v := bc.First(); k != nil; k, v = bc.Next() {
			id := formatID(binary.BigEndian.Uint64(k))
			seen[id] = true
			rep.Broadcasts++
			l, ok := latest[id]
			switch {
			case !ok:
				return &BrokenLink{Target: id, Reason: "no audit entry records this broadcast"}
			case l.action == tocsin.AuditPurged:
				return &BrokenLink{Seq: l.seq, Target: id, Reason: "purged, yet the record is still there"}
			case sum(v) != l.state:
				return &BrokenLink{Seq: l.seq, Target: id, Reason: "the record differs from the state this entry recorded"}
			}
		}
		for id, l := range latest {
			if !seen[id] && l.action != tocsin.AuditPurged {
				return &BrokenLink{Seq: l.seq, Target: id, Reason: "the record is missing"}
			}
		}
		return nil
	})
	return rep, err
}
