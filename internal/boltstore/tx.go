package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/klauspost/compress/s2"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// tx adapts a bbolt transaction to tocsin.Tx. Values are JSON; keys that
// order (sequences, times) are big-endian so cursors walk them in order.
type tx struct {
	btx     *bolt.Tx
	regions tocsin.Regions
	// The maps about broadcasts are keyed by sequence, not id: an id has
	// more than one spelling (BC1 and BC000001 are one record), and a
	// caller's spelling must find what another's wrote.
	//
	// written maps each broadcast written in this transaction to the
	// SHA-256 of its stored record, for the audit entries that follow.
	written map[uint64]string
	// stated maps each broadcast to the state hash an audit entry of this
	// transaction last recorded for it.
	stated map[uint64]string
	// providers is the store's decoded provider list; wroteProviders is
	// set once this transaction writes one, and it then reads its own.
	providers      *providerCache
	wroteProviders bool
	// histories holds the history each broadcast was last written with in
	// this transaction: its newest events reach the audit trail after
	// PutBroadcast, and a read in between must see them.
	histories map[uint64][]tocsin.Event
	// indexedAs holds the index entries of each broadcast as this
	// writable transaction read or wrote it, so writing it back touches
	// only the entries that changed.
	indexedAs map[uint64][]indexEntry
	// inline marks broadcasts stored before their history moved to the
	// audit trail: they keep it in the record.
	inline map[uint64]bool
	// orgs holds the organisations this transaction has read: the
	// filings of one department that share a commit decode its record
	// once. An Organisation has no references, so a copy is a deep one.
	orgs map[string]tocsin.Organisation
	// sharedOrgs and sharedCreds are the store's caches of decoded
	// organisations and credentials (nil in a transaction that has
	// written that bucket: it reads its own).
	sharedOrgs  *recordCache[tocsin.Organisation]
	sharedCreds *recordCache[tocsin.Credential]
	// auditHead is the hex hash of the trail's last entry once this
	// transaction has read it; headMoved says an entry was added since,
	// and flush stores the new head once rather than once an entry.
	auditHead string
	headRead  bool
	headMoved bool
}

func newTx(btx *bolt.Tx, db *DB) *tx {
	return &tx{btx: btx, regions: db.regions, written: map[uint64]string{}, stated: map[uint64]string{}, providers: &db.providers,
		histories: map[uint64][]tocsin.Event{}, inline: map[uint64]bool{}, orgs: map[string]tocsin.Organisation{},
		sharedOrgs: &db.orgs, sharedCreds: &db.creds}
}

// cached reads record id of bucket through cache (see recordCache).
func cached[T any](t *tx, cache *recordCache[T], bucket []byte, kind, id string) (*T, error) {
	txid := uint64(t.btx.ID())
	if cache != nil {
		if v, ok := cache.get(id, txid); ok {
			return &v, nil
		}
	}
	v, err := getOne[T](t, bucket, kind, id)
	if err == nil && cache != nil && !t.btx.Writable() {
		cache.put(id, *v, txid)
	}
	return v, err
}

// wrote marks that this transaction writes the bucket cache keeps, and
// returns nil for it to read through from then on.
func wrote[T any](t *tx, cache *recordCache[T]) *recordCache[T] {
	if cache != nil {
		cache.invalidate(uint64(t.btx.ID()))
	}
	return nil
}

var _ tocsin.Tx = (*tx)(nil)

const idPrefix = "BC"

func formatID(seq uint64) string { return formatSeq(idPrefix, seq) }

// formatSeq spells an id as prefix and at least six digits (what
// fmt.Sprintf("%s%06d") makes, without its cost on every filing).
func formatSeq(prefix string, seq uint64) string {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq, 10)
	var b strings.Builder
	b.Grow(len(prefix) + max(6, len(d)))
	b.WriteString(prefix)
	for range 6 - len(d) {
		b.WriteByte('0')
	}
	b.Write(d)
	return b.String()
}

func parseID(id string) (uint64, bool) { return parseSeq(idPrefix, id) }

// parseSeq reads the sequence number of an id made of prefix and digits.
func parseSeq(prefix, id string) (uint64, bool) {
	digits, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil && seq > 0
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func notFound(kind, id string) error {
	return tocsin.Errorf(tocsin.CodeNotFound, "%s %q not found", kind, id)
}

func (t *tx) get(bucket []byte, key []byte, v any) (bool, error) {
	data := t.btx.Bucket(bucket).Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s/%q: %w", bucket, key, err)
	}
	return true, nil
}

func (t *tx) put(bucket []byte, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%q: %w", bucket, key, err)
	}
	if err := t.btx.Bucket(bucket).Put(key, data); err != nil {
		return fmt.Errorf("put %s/%q: %w", bucket, key, err)
	}
	return nil
}

// Broadcasts.

func (t *tx) NewBroadcastID() (string, error) {
	seq, err := t.btx.Bucket(bucketBroadcasts).NextSequence()
	if err != nil {
		return "", fmt.Errorf("next broadcast id: %w", err)
	}
	return formatID(seq), nil
}

func (t *tx) Broadcast(id string) (*tocsin.Broadcast, error) {
	seq, ok := parseID(id)
	if !ok {
		return nil, notFound("broadcast", id)
	}
	return t.broadcastBySeq(seq, id)
}

// broadcastBySeq reads a broadcast with its history.
func (t *tx) broadcastBySeq(seq uint64, id string) (*tocsin.Broadcast, error) {
	b, err := t.recordBySeq(seq, id)
	if err != nil {
		return nil, err
	}
	if t.btx.Writable() {
		// The caller may change b and put it back: remember where it
		// is indexed now, before it can.
		t.rememberIndexes(seq, t.indexes(b, u64(seq)))
	}
	return b, t.fillHistory(seq, b)
}

// recordBySeq reads a broadcast's record alone: its History is empty
// unless the record was stored before the history moved to the audit
// trail.
func (t *tx) recordBySeq(seq uint64, id string) (*tocsin.Broadcast, error) {
	b, err := t.storedRecord(seq, id)
	if b == nil && err == nil {
		return nil, notFound("broadcast", id)
	}
	return b, err
}

// storedRecord is recordBySeq with nil, not an error, for no record: a
// filing's PutBroadcast asks for every new one, and the error, formatted,
// would be made to be dropped.
func (t *tx) storedRecord(seq uint64, id string) (*tocsin.Broadcast, error) {
	stored := t.btx.Bucket(bucketBroadcasts).Get(u64(seq))
	if stored == nil {
		return nil, nil
	}
	b, err := decodeBroadcast(stored)
	if err != nil {
		return nil, fmt.Errorf("decode broadcast %s: %w", id, err)
	}
	if len(b.History) > 0 {
		t.inline[seq] = true
	}
	return b, nil
}

// decodeBroadcast reads a stored broadcast record, compressed or not.
func decodeBroadcast(stored []byte) (*tocsin.Broadcast, error) {
	data, err := decodeRecord(stored)
	if err != nil {
		return nil, err
	}
	var b tocsin.Broadcast
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// fillHistory gives b, as recordBySeq read it, its history: the one it
// was written with in this transaction, or the audit trail's events.
func (t *tx) fillHistory(seq uint64, b *tocsin.Broadcast) error {
	if h, written := t.histories[seq]; written {
		b.History = slices.Clone(h)
		return nil
	}
	if t.inline[seq] {
		return nil
	}
	var err error
	b.History, err = t.history(formatID(seq))
	return err
}

// A broadcast record is stored as its JSON compressed with S2 (about
// 1,300 bytes of a finished emergency become 750, for 2.5 µs to compress
// and under 1 µs to read back), behind a byte no JSON starts with; the
// records of the first wave are plain JSON and read as they are. S2's
// default mode, not its better one: that took 7.5 µs of the single
// writer's time for 3 % fewer bytes, and a record is written again at
// each step of its life.
const recordS2 = 0x01

func encodeRecord(data []byte) []byte {
	buf := make([]byte, 1+s2.MaxEncodedLen(len(data)))
	buf[0] = recordS2
	n := len(s2.Encode(buf[1:], data))
	return buf[:1+n]
}

func decodeRecord(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != recordS2 {
		return stored, nil
	}
	data, err := s2.Decode(nil, stored[1:])
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return data, nil
}

// PutBroadcast writes b and moves its index entries from those of the
// version it replaces.
func (t *tx) PutBroadcast(b *tocsin.Broadcast) error {
	seq, ok := parseID(b.ID)
	if !ok {
		return fmt.Errorf("put broadcast: malformed id %q", b.ID)
	}
	key := u64(seq)
	was, err := t.storedIndexes(seq, b.ID)
	if err != nil {
		return err
	}
	// The history is the audit trail's (see broadcastBySeq): the record
	// does not keep a second copy.
	stored := *b
	if !t.inline[seq] {
		stored.History = nil
	}
	data, err := json.Marshal(&stored)
	if err != nil {
		return fmt.Errorf("encode broadcast %s: %w", b.ID, err)
	}
	data = encodeRecord(data)
	t.histories[seq] = slices.Clone(b.History)
	if err := t.btx.Bucket(bucketBroadcasts).Put(key, data); err != nil {
		return fmt.Errorf("put broadcast %s: %w", b.ID, err)
	}
	t.written[seq] = sum(data)
	is := t.indexes(b, key)
	if err := t.reindex(was, is); err != nil {
		return err
	}
	t.rememberIndexes(seq, is)
	return nil
}

// indexEntry is one key of one index bucket.
type indexEntry struct {
	bucket, key []byte
}

// indexes lists every index entry of b.
func (t *tx) indexes(b *tocsin.Broadcast, key []byte) []indexEntry {
	es := []indexEntry{
		{bucketByStatus, compositeKey(string(b.Status), key)},
		{bucketByDept, compositeKey(b.Department, key)},
	}
	for _, p := range b.Provinces(t.regions) {
		es = append(es, indexEntry{bucketByProvince, compositeKey(p, key)})
	}
	if b.Scheduled() { // approved and not held back by a correction
		es = append(es, indexEntry{bucketSchedule, scheduleKey(b.SendAt, key)})
	}
	for _, li := range laterIndexes {
		for _, k := range li.keys(b, key) {
			es = append(es, indexEntry{li.bucket, k})
		}
	}
	return es
}

// storedIndexes returns the index entries of broadcast seq as this
// transaction last read or wrote it, reading the record only when it has
// done neither; nil when there is no such broadcast.
func (t *tx) storedIndexes(seq uint64, id string) ([]indexEntry, error) {
	if es, ok := t.indexedAs[seq]; ok {
		return es, nil
	}
	old, err := t.storedRecord(seq, id)
	if old == nil || err != nil {
		return nil, err
	}
	return t.indexes(old, u64(seq)), nil
}

// rememberIndexes records where broadcast seq is indexed now; nil
// entries, that it is not stored.
func (t *tx) rememberIndexes(seq uint64, es []indexEntry) {
	if t.indexedAs == nil {
		t.indexedAs = map[uint64][]indexEntry{}
	}
	t.indexedAs[seq] = es
}

// reindex moves a broadcast's index entries from was to is, touching only
// those that differ: a receipt's progress leaves every one of them as it
// was, and deleting and putting them again cost bbolt a page search each.
func (t *tx) reindex(was, is []indexEntry) error {
	for _, e := range was {
		if !slices.ContainsFunc(is, e.equal) {
			if err := t.btx.Bucket(e.bucket).Delete(e.key); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
	}
	for _, e := range is {
		if !slices.ContainsFunc(was, e.equal) {
			if err := t.btx.Bucket(e.bucket).Put(e.key, nil); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
	}
	return nil
}

func (e indexEntry) equal(o indexEntry) bool {
	return bytes.Equal(e.bucket, o.bucket) && bytes.Equal(e.key, o.key)
}

// laterIndex is an index added after stores were first written: Open
// fills it for a store that lacks it (fillIndexes).
type laterIndex struct {
	bucket []byte
	keys   func(b *tocsin.Broadcast, seq []byte) [][]byte
}

var laterIndexes = []laterIndex{
	{bucketWindows, windowKeys},
	{bucketAwaited, awaitedKeys},
}

func windowKeys(b *tocsin.Broadcast, seq []byte) [][]byte {
	if closes, ok := b.WindowCloses(); ok {
		return [][]byte{scheduleKey(closes, seq)}
	}
	return nil
}

// Awaited keys are when the dispatch was queued, the broadcast's
// sequence, a flags byte and the provider: a walk in key order meets the
// oldest first and needs no record decoded.
const (
	awaitedEmergency = 1 << iota
	awaitedLate
)

func awaitedKeys(b *tocsin.Broadcast, seq []byte) [][]byte {
	var keys [][]byte
	for _, a := range b.Awaited() {
		var flags byte
		if a.Emergency {
			flags |= awaitedEmergency
		}
		if a.Late {
			flags |= awaitedLate
		}
		k := append(scheduleKey(a.QueuedAt, seq), flags)
		keys = append(keys, append(k, a.Provider...))
	}
	return keys
}

func compositeKey(prefix string, seq []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(seq))
	k = append(k, prefix...)
	k = append(k, 0)
	return append(k, seq...)
}

func scheduleKey(at time.Time, seq []byte) []byte {
	return append(u64(uint64(at.UnixNano())), seq...)
}

func (t *tx) Broadcasts(q tocsin.Query) (tocsin.Page, error) {
	var before uint64 = 1<<64 - 1
	if q.Cursor != "" {
		seq, ok := parseID(q.Cursor)
		if !ok {
			return tocsin.Page{}, tocsin.Errorf(tocsin.CodeInvalid, "malformed cursor %q", q.Cursor)
		}
		before = seq
	}
	// Walk the most selective index newest first and filter the rest.
	bucket, prefix := bucketBroadcasts, []byte(nil)
	switch {
	case q.Department != "":
		bucket, prefix = bucketByDept, compositeKey(q.Department, nil)
	case len(q.Status) == 1:
		bucket, prefix = bucketByStatus, compositeKey(string(q.Status[0]), nil)
	case q.Province != "":
		bucket, prefix = bucketByProvince, compositeKey(q.Province, nil)
	}
	var page tocsin.Page
	err := reverseScan(t.btx.Bucket(bucket).Cursor(), prefix, before, func(seq uint64) (bool, error) {
		b, err := t.recordBySeq(seq, formatID(seq))
		if err != nil {
			return false, err
		}
		if !matches(q, b, t.regions) {
			return true, nil
		}
		if q.Limit > 0 && len(page.Broadcasts) == q.Limit {
			page.NextCursor = page.Broadcasts[len(page.Broadcasts)-1].ID
			return false, nil
		}
		page.Broadcasts = append(page.Broadcasts, b)
		if q.WithoutHistory {
			return true, nil
		}
		return true, t.fillHistory(seq, b)
	})
	return page, err
}

func matches(q tocsin.Query, b *tocsin.Broadcast, regions tocsin.Regions) bool {
	switch {
	case len(q.Status) > 0 && !slices.Contains(q.Status, b.Status):
		return false
	case q.Department != "" && b.Department != q.Department:
		return false
	case q.Province != "" && !slices.Contains(b.Provinces(regions), q.Province):
		return false
	case q.Emergency != nil && *q.Emergency != b.IsEmergency():
		return false
	case q.PostHoc != "" && !q.PostHoc.Matches(b.PostHoc, q.Now):
		return false
	}
	return true
}

// reverseScan calls fn with the sequence number ending each key under
// prefix that is below before, largest first, until fn returns false.
func reverseScan(c *bolt.Cursor, prefix []byte, before uint64, fn func(uint64) (bool, error)) error {
	k, _ := c.Seek(append(slices.Clip(prefix), u64(before)...))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) != len(prefix)+8 {
			continue // a longer prefix sharing ours, e.g. another department's id
		}
		more, err := fn(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *tx) DueReleases(at time.Time) ([]string, error) {
	return idsUntil(t.btx.Bucket(bucketSchedule), at), nil
}

// idsUntil returns the broadcast ids of a bucket keyed by time and then
// sequence (scheduleKey), for every time at or before at, oldest first.
func idsUntil(b *bolt.Bucket, at time.Time) []string {
	var ids []string
	limit := uint64(at.UnixNano())
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k[:8]) <= limit; k, _ = c.Next() {
		ids = append(ids, formatID(binary.BigEndian.Uint64(k[8:])))
	}
	return ids
}

func (t *tx) WindowsClosedBy(at time.Time) ([]string, error) {
	return idsUntil(t.btx.Bucket(bucketWindows), at), nil
}

func (t *tx) AwaitedBefore(at time.Time) ([]tocsin.Awaited, error) {
	var out []tocsin.Awaited
	before := at.UnixNano()
	c := t.btx.Bucket(bucketAwaited).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) < 17 {
			return out, fmt.Errorf("awaited index: malformed key %x", k)
		}
		queued := int64(binary.BigEndian.Uint64(k[:8]))
		if queued >= before {
			break
		}
		out = append(out, tocsin.Awaited{
			BroadcastID: formatID(binary.BigEndian.Uint64(k[8:16])), Provider: string(k[17:]),
			QueuedAt: time.Unix(0, queued), Emergency: k[16]&awaitedEmergency != 0, Late: k[16]&awaitedLate != 0,
		})
	}
	return out, nil
}

func (t *tx) NextRelease() (time.Time, bool, error) {
	k, _ := t.btx.Bucket(bucketSchedule).Cursor().First()
	if k == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))), true, nil
}

// Idempotency keys.

func idempotencyKey(org, key string) []byte { return []byte(org + "\x00" + key) }

func (t *tx) Idempotency(org, key string) (tocsin.IdempotencyRecord, bool, error) {
	var rec tocsin.IdempotencyRecord
	ok, err := t.get(bucketIdempotency, idempotencyKey(org, key), &rec)
	return rec, ok, err
}

func (t *tx) PutIdempotency(org, key string, rec tocsin.IdempotencyRecord) error {
	return t.put(bucketIdempotency, idempotencyKey(org, key), rec)
}

// Directory: organisations, accounts, providers.

func (t *tx) Organisation(id string) (*tocsin.Organisation, error) {
	if o, ok := t.orgs[id]; ok {
		return &o, nil
	}
	o, err := cached(t, t.sharedOrgs, bucketOrgs, "organisation", id)
	if err == nil {
		t.orgs[id] = *o
	}
	return o, err
}

func (t *tx) Organisations() ([]*tocsin.Organisation, error) {
	return getAll[tocsin.Organisation](t, bucketOrgs)
}

func (t *tx) PutOrganisation(o *tocsin.Organisation) error {
	delete(t.orgs, o.ID)
	t.sharedOrgs = wrote(t, t.sharedOrgs)
	return t.put(bucketOrgs, []byte(o.ID), o)
}

func (t *tx) Account(username string) (*tocsin.Account, error) {
	return getOne[tocsin.Account](t, bucketAccounts, "account", username)
}

func (t *tx) PutAccount(a *tocsin.Account) error {
	return t.put(bucketAccounts, []byte(a.Username), a)
}

func (t *tx) Provider(id string) (*tocsin.Provider, error) {
	return getOne[tocsin.Provider](t, bucketProviders, "provider", id)
}

func (t *tx) Providers() ([]*tocsin.Provider, error) {
	list, err := t.sharedProviders()
	if err != nil {
		return nil, err
	}
	return copyProviders(list), nil
}

func (t *tx) EachCovering(scope []string, fn func(p *tocsin.Provider, regions []string) error) error {
	list, err := t.sharedProviders()
	if err != nil {
		return err
	}
	if t.providers == nil || t.wroteProviders { // this transaction's own list: nothing to remember
		return eachCovered(coverageOf(list, t.regions, scope), fn)
	}
	return eachCovered(t.providers.coverage(list, t.regions, scope), fn)
}

func eachCovered(cov []covered, fn func(*tocsin.Provider, []string) error) error {
	for _, c := range cov {
		if err := fn(c.p, c.regions); err != nil {
			return err
		}
	}
	return nil
}

// sharedProviders is the provider list for this transaction's snapshot:
// the cache's (see providerCache), not to be changed.
func (t *tx) sharedProviders() ([]*tocsin.Provider, error) {
	if t.providers == nil || t.wroteProviders {
		return getAll[tocsin.Provider](t, bucketProviders)
	}
	txid := uint64(t.btx.ID())
	if list, ok := t.providers.get(txid); ok {
		return list, nil
	}
	list, err := getAll[tocsin.Provider](t, bucketProviders)
	if err == nil {
		t.providers.put(list, txid)
	}
	return list, err
}

func (t *tx) PutProvider(p *tocsin.Provider) error {
	if t.providers != nil && !t.wroteProviders {
		t.providers.invalidate(uint64(t.btx.ID()))
	}
	t.wroteProviders = true
	return t.put(bucketProviders, []byte(p.ID), p)
}

func getOne[T any](t *tx, bucket []byte, kind, id string) (*T, error) {
	var v T
	found, err := t.get(bucket, []byte(id), &v)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(kind, id)
	}
	return &v, nil
}

func getAll[T any](t *tx, bucket []byte) ([]*T, error) {
	var out []*T
	err := t.btx.Bucket(bucket).ForEach(func(k, data []byte) error {
		v := new(T)
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("decode %s/%q: %w", bucket, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Outbox. Its length is kept in meta so readiness checks stay O(1).

var outboxLenKey = []byte("outbox_len")

func (t *tx) Enqueue(m tocsin.OutboxMessage) error {
	b := t.btx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	if err := b.Put(u64(seq), encodeOutbox(m)); err != nil {
		return fmt.Errorf("enqueue %s: %w", m.MsgID, err)
	}
	return t.addOutboxLen(1)
}

func (t *tx) Dequeue(seqs ...uint64) error {
	b := t.btx.Bucket(bucketOutbox)
	removed := 0
	for _, seq := range seqs {
		k := u64(seq)
		if b.Get(k) == nil {
			continue
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("dequeue %d: %w", seq, err)
		}
		removed++
	}
	return t.addOutboxLen(-removed)
}

func (t *tx) Outbox(limit int) ([]tocsin.OutboxMessage, error) {
	return t.OutboxExcept(limit, nil, nil)
}

func (t *tx) OutboxExcept(limit int, held map[string]bool, inFlight map[uint64]bool) ([]tocsin.OutboxMessage, error) {
	var out []tocsin.OutboxMessage
	c := t.btx.Bucket(bucketOutbox).Cursor()
	for k, data := c.First(); k != nil && len(out) < limit; k, data = c.Next() {
		seq := binary.BigEndian.Uint64(k)
		if inFlight[seq] {
			continue
		}
		m, err := decodeOutbox(seq, data)
		if err != nil {
			return nil, err
		}
		if held[m.Provider] {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (t *tx) OutboxLen() (int, error) {
	v := t.btx.Bucket(bucketMeta).Get(outboxLenKey)
	if v == nil {
		return 0, nil
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

func (t *tx) addOutboxLen(delta int) error {
	n, _ := t.OutboxLen()
	return t.btx.Bucket(bucketMeta).Put(outboxLenKey, u64(uint64(max(n+delta, 0))))
}
