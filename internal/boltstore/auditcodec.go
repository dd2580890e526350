package boltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Two forms of stored audit entry live side by side; each value says which
// it is by its first byte.
//
// The first (the stores of the first wave) is "<hex hash>\n<JSON>", the
// JSON carrying its own seq and prev, the hash over the JSON.
//
// The compact form (auditCompact) is one version byte, the raw SHA-256,
// then a binary body: a flags byte, the time as a varint of Unix
// nanoseconds, the text fields as length-prefixed strings, the state hash
// raw and the parameters as JSON. Its hash is taken over the big-endian
// sequence, the previous entry's raw hash and the body, so the chain
// holds every link as before without storing seq or prev at all: the key
// is the sequence, and the previous hash is the previous entry's. A
// receipt entry takes about 200 bytes instead of 460, and a broadcast's
// history, which lives in these entries, is not kept twice.
const auditCompact = 0x01

// Flags of a compact body.
const (
	flagEvent       = 1 << iota // the entry is one of its broadcast's history events
	flagStateHash               // a raw state hash follows the text fields
	flagStateBefore             // the state hash is the one last stated about the target
)

// stateAsBefore is the StateHash of a decoded entry with flagStateBefore,
// until resolveState replaces it with the hash it stands for; an entry to
// encode with it gets the flag.
const stateAsBefore = "="

// encodeAudit returns the stored form of e, at seq after the entry whose
// hex hash is prev, and its hex hash.
func encodeAudit(seq uint64, prev string, e tocsin.AuditEntry) (value []byte, hash string, err error) {
	prevRaw, err := hex.DecodeString(prev)
	if err != nil {
		return nil, "", fmt.Errorf("previous hash %q: %w", prev, err)
	}
	var flags byte
	var state []byte
	if e.Event {
		flags |= flagEvent
	}
	switch e.StateHash {
	case "":
	case stateAsBefore:
		flags |= flagStateBefore
	default:
		if state, err = hex.DecodeString(e.StateHash); err != nil || len(state) != sha256.Size {
			return nil, "", fmt.Errorf("state hash %q is not a hex SHA-256", e.StateHash)
		}
		flags |= flagStateHash
	}
	var params []byte
	if len(e.Params) > 0 {
		if params, err = json.Marshal(e.Params); err != nil {
			return nil, "", fmt.Errorf("params: %w", err)
		}
	}
	value = make([]byte, 1+sha256.Size, 1+sha256.Size+96+len(e.Note)+len(params))
	value[0] = auditCompact
	body := append(value, flags)
	body = binary.AppendVarint(body, e.At.UnixNano())
	for _, s := range []string{e.Action, e.Org, e.By, e.Source, e.Target, e.Before, e.After, e.Note} {
		body = appendString(body, s)
	}
	body = append(body, state...)
	body = appendString(body, string(params))
	sum := compactHash(seq, prevRaw, body[1+sha256.Size:])
	copy(body[1:], sum[:])
	return body, hex.EncodeToString(sum[:]), nil
}

func compactHash(seq uint64, prevRaw, body []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	h.Write(prevRaw)
	h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// storedHash is the hex hash a stored entry claims, in either form,
// without checking it.
func storedHash(value []byte) string {
	if len(value) > 0 && value[0] == auditCompact {
		if len(value) < 1+sha256.Size {
			return ""
		}
		return hex.EncodeToString(value[1 : 1+sha256.Size])
	}
	hash, _, _ := bytes.Cut(value, []byte{'\n'})
	return string(hash)
}

// decodeAudit reads the stored entry at seq, whose predecessor's hex hash
// is prev, and checks it against its own hash. An entry in the first
// form carries its own prev; the caller compares it with prev.
func decodeAudit(seq uint64, prev string, value []byte) (tocsin.AuditEntry, error) {
	if len(value) == 0 || value[0] != auditCompact {
		return decodeJSONAudit(value)
	}
	e, err := decodeCompactBody(value)
	if err != nil {
		return e, err
	}
	prevRaw, err := hex.DecodeString(prev)
	if err != nil {
		return e, fmt.Errorf("previous hash %q: %w", prev, err)
	}
	e.Seq, e.Prev = seq, prev
	if sum := compactHash(seq, prevRaw, value[1+sha256.Size:]); !bytes.Equal(sum[:], value[1:1+sha256.Size]) {
		return e, errors.New("hash does not match the entry's content and the entry before it")
	}
	e.Hash = hex.EncodeToString(value[1 : 1+sha256.Size])
	return e, nil
}

// isEvent reports whether a stored compact entry is a history event,
// from its flags alone.
func isEvent(value []byte) bool {
	return len(value) > 1+sha256.Size && value[1+sha256.Size]&flagEvent != 0
}

// decodeCompactBody reads a compact entry's fields, not checking its hash
// (Seq, Prev and Hash stay empty): for reading a broadcast's history.
func decodeCompactBody(value []byte) (tocsin.AuditEntry, error) {
	var e tocsin.AuditEntry
	if len(value) < 2+sha256.Size {
		return e, errors.New("entry is too short")
	}
	r := bodyReader{b: value[1+sha256.Size:]}
	flags := r.byte()
	at := r.varint()
	strs := []*string{&e.Action, &e.Org, &e.By, &e.Source, &e.Target, &e.Before, &e.After, &e.Note}
	for _, s := range strs {
		*s = r.string()
	}
	switch {
	case flags&flagStateHash != 0:
		e.StateHash = hex.EncodeToString(r.bytes(sha256.Size))
	case flags&flagStateBefore != 0:
		e.StateHash = stateAsBefore
	}
	params := r.string()
	if r.err != nil {
		return e, fmt.Errorf("entry body: %w", r.err)
	}
	if len(r.b) != 0 {
		return e, errors.New("entry body: trailing bytes")
	}
	if params != "" {
		if err := json.Unmarshal([]byte(params), &e.Params); err != nil {
			return e, fmt.Errorf("entry params: %w", err)
		}
	}
	e.At = time.Unix(0, at).In(tocsin.Shanghai)
	e.Event = flags&flagEvent != 0
	return e, nil
}

// decodeJSONAudit splits an entry in the first form and checks it against
// its own hash.
func decodeJSONAudit(value []byte) (tocsin.AuditEntry, error) {
	var e tocsin.AuditEntry
	hash, body, ok := bytes.Cut(value, []byte{'\n'})
	if !ok {
		return e, errors.New("entry is not in hash-and-body form")
	}
	// Parse first, so a broken entry can still be named by its target.
	jsonErr := json.Unmarshal(body, &e)
	if sum(body) != string(hash) {
		return e, errors.New("hash does not match the entry's content")
	}
	if jsonErr != nil {
		return e, fmt.Errorf("entry is not valid JSON: %w", jsonErr)
	}
	e.Hash = string(hash)
	return e, nil
}

// bodyReader reads a compact body, remembering the first error.
type bodyReader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *bodyReader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *bodyReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if r.err == nil && n <= 0 {
		r.err = errShort
	}
	if r.err != nil {
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *bodyReader) bytes(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *bodyReader) string() string {
	n, k := binary.Uvarint(r.b)
	if r.err == nil && (k <= 0 || n > uint64(len(r.b)-k)) {
		r.err = errShort
	}
	if r.err != nil {
		return ""
	}
	r.b = r.b[k:]
	return string(r.bytes(int(n)))
}
