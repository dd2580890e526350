package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/testkit/fulldisk"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// mountTmpfs mounts a small tmpfs: a real disk that really fills up.
func mountTmpfs(t *testing.T, size string) string { return fulldisk.Mount(t, size) }

// fill fills the file system with a ballast file, and checks nothing is
// left free.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := fulldisk.Fill(t, dir)
	if free, _ := freeBytes(filepath.Join(dir, "x")); free != 0 {
		t.Fatalf("%d bytes still free after filling", free)
	}
	return path
}

// logRecorder keeps the messages logged at each level.
type logRecorder struct {
	mu   sync.Mutex
	msgs map[slog.Level][]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[rec.Level] = append(r.msgs[rec.Level], rec.Message)
	return nil
}

func (r *logRecorder) count(level slog.Level, prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs[level] {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for luck
	}
}

// bigUpdates runs n concurrent Updates, each storing a broadcast of
// department prefix-i with content of size bytes, its idempotency record
// and an outbox message. If batched, they share one commit (the commit
// holding the writer meanwhile must succeed).
// incompressible returns about size bytes of random CJK text: records are
// stored compressed, and these must take their size on disk.
func incompressible(size int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < size {
		b.WriteRune(rune(0x4E00 + rng.IntN(0x5000)))
	}
	return b.String()
}

func bigUpdates(t *testing.T, db *DB, batched bool, prefix string, n, size int) []error {
	t.Helper()
	queued, release := func(int) {}, func() {}
	if batched {
		queued, release = holdCommitter(t, db)
	}
	content := incompressible(size)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dept := fmt.Sprintf("%s-%d", prefix, i)
			errs[i] = db.Update(context.Background(), func(tx tocsin.Tx) error {
				id, err := tx.NewBroadcastID()
				if err != nil {
					return err
				}
				b := broadcast(id, tocsin.StatusApproved, dept, t0, "440100")
				b.Content = content
				if err := tx.PutBroadcast(b); err != nil {
					return err
				}
				if err := tx.PutIdempotency(dept, "k", tocsin.IdempotencyRecord{BroadcastID: id}); err != nil {
					return err
				}
				return tx.Enqueue(tocsin.OutboxMessage{Provider: "cmcc", MsgID: id})
			})
		})
		queued(i + 1)
	}
	release()
	wg.Wait()
	return errs
}

// storeState is what a reader sees of the departments in the store.
type storeState struct {
	depts     map[string]string // broadcast id -> department
	outbox    int
	scheduled int
	nextID    string
}

func state(t *testing.T, db *DB, idemDepts ...string) (storeState, map[string]bool) {
	t.Helper()
	s := storeState{depts: map[string]string{}}
	idem := map[string]bool{}
	mustView(t, db, func(tx tocsin.ReadTx) error {
		page, err := tx.Broadcasts(tocsin.Query{})
		if err != nil {
			return err
		}
		for _, b := range page.Broadcasts {
			s.depts[b.ID] = b.Department
		}
		if s.outbox, err = tx.OutboxLen(); err != nil {
			return err
		}
		due, err := tx.DueReleases(t0)
		s.scheduled = len(due)
		for _, d := range idemDepts {
			_, ok, err := tx.Idempotency(d, "k")
			if err != nil {
				return err
			}
			idem[d] = ok
		}
		return err
	})
	return s, idem
}

// openWithApproved opens a store at path, recording its logs, with n
// approved broadcasts committed (before-0 ...): what a fault must not
// touch.
func openWithApproved(t *testing.T, path string, n int) (*DB, *logRecorder) {
	t.Helper()
	logs := &logRecorder{msgs: map[slog.Level][]string{}}
	db, err := Open(path, region.Default(), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range n {
		mustUpdate(t, db, func(tx tocsin.Tx) error {
			_, err := putNew(tx, tocsin.StatusApproved, fmt.Sprintf("before-%d", i), t0, "440100")
			return err
		})
	}
	return db, logs
}

func TestFullDiskFailsCleanlyAndRecovers(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	path := filepath.Join(dir, "tocsin.db")
	// Committed before the disk fills: must survive everything below.
	const before = 10
	db, logs := openWithApproved(t, path, before)
	if err := db.Writable(); err != nil {
		t.Fatalf("Writable on a healthy store: %v", err)
	}
	committedAt := db.LastCommit()
	if committedAt.IsZero() {
		t.Fatal("LastCommit is zero after commits")
	}

	ballast := fill(t, dir)

	// One batch of 8 Updates of 128 KiB each: 1 MiB of new pages, more than
	// the whole file holds, so it cannot fit into pages bbolt freed.
	const n, size = 8, 128 << 10
	var failedDepts []string
	for i := range n {
		failedDepts = append(failedDepts, fmt.Sprintf("failed-%d", i))
	}
	for i, err := range bigUpdates(t, db, true, "failed", n, size) {
		if err == nil {
			t.Fatalf("Update %d on a full disk succeeded", i)
		}
		if code := tocsin.ErrorCode(err); code != tocsin.CodeUnavailable {
			t.Errorf("Update %d: code %s, want unavailable: %v", i, code, err)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Update %d: %v does not wrap ENOSPC", i, err)
		}
		if msg := tocsin.ErrorMessage(err); !strings.Contains(msg, "the disk is full") || !strings.Contains(msg, "nothing was saved") {
			t.Errorf("Update %d: message %q does not say the disk is full and nothing was saved", i, msg)
		}
	}
	werr := db.Writable()
	if werr == nil || tocsin.ErrorCode(werr) != tocsin.CodeUnavailable || !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("Writable after a failed commit = %v, want unavailable wrapping ENOSPC", werr)
	}
	if msg := tocsin.ErrorMessage(werr); !strings.Contains(msg, "since") || !strings.Contains(msg, "the disk is full") {
		t.Errorf("Writable says %q, want what failed and since when", msg)
	}

	// Nothing of the failed batch is visible; what was there is intact.
	check := func(when string, wantAfter int) {
		t.Helper()
		s, idem := state(t, db, failedDepts...)
		if len(s.depts) != before+wantAfter {
			t.Errorf("%s: %d broadcasts, want %d", when, len(s.depts), before+wantAfter)
		}
		for i := range before {
			if d := s.depts[formatID(uint64(i+1))]; d != fmt.Sprintf("before-%d", i) {
				t.Errorf("%s: %s belongs to %q, want before-%d", when, formatID(uint64(i+1)), d, i)
			}
		}
		for id, d := range s.depts {
			if strings.HasPrefix(d, "failed-") {
				t.Errorf("%s: broadcast %s of the failed batch (%s) is visible", when, id, d)
			}
		}
		for d, ok := range idem {
			if ok {
				t.Errorf("%s: idempotency record of the failed batch (%s) is visible", when, d)
			}
		}
		if s.outbox != wantAfter || s.scheduled != before+wantAfter {
			t.Errorf("%s: outbox %d, scheduled %d; want %d and %d", when, s.outbox, s.scheduled, wantAfter, before+wantAfter)
		}
	}
	check("after the failed batch", 0)

	// The probe keeps trying while the disk is full, and does not call the
	// store writable even if its tiny write fits into freed pages.
	db.healthMu.Lock()
	tries, lastOK := db.health.failures, db.health.lastCommit
	db.healthMu.Unlock()
	await(t, 10*time.Second, "a probe attempt", func() bool {
		db.healthMu.Lock()
		defer db.healthMu.Unlock()
		return db.health.failures > tries || db.health.lastCommit.After(lastOK)
	})
	if err := db.Writable(); err == nil {
		t.Fatal("Writable turned nil while the disk is still full")
	}
	db.healthMu.Lock()
	t.Logf("probe on the full disk: %d failed commits, last commit %s after the batch", db.health.failures-tries, db.health.lastCommit.Sub(lastOK))
	db.healthMu.Unlock()

	// Space comes back: Writable turns nil by itself, no user write needed.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	await(t, 2*probeMax+time.Second, "Writable after the disk has space", func() bool { return db.Writable() == nil })
	t.Logf("writable again %s after the ballast was removed", time.Since(freed).Round(time.Millisecond))
	if !db.LastCommit().After(committedAt) {
		t.Error("LastCommit did not advance with the probe's commit")
	}

	for i, err := range bigUpdates(t, db, true, "after", n, size) {
		if err != nil {
			t.Errorf("Update %d after recovery: %v", i, err)
		}
	}
	check("after recovery", n)
	if got := logs.count(slog.LevelError, "store unwritable"); got != 1 {
		t.Errorf("logged the outage at ERROR %d times, want once", got)
	}
	if got := logs.count(slog.LevelInfo, "store writable again"); got != 1 {
		t.Errorf("logged the recovery at INFO %d times, want once", got)
	}

	// The failed allocations left no gap: the new broadcasts follow on.
	s, _ := state(t, db)
	for i := range n {
		if !strings.HasPrefix(s.depts[formatID(uint64(before+i+1))], "after-") {
			t.Errorf("%s is %q, want one of the batch after recovery", formatID(uint64(before+i+1)), s.depts[formatID(uint64(before+i+1))])
		}
	}

	// And all of it is on disk.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, region.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	check("after reopening", n)
}

// mountExt4 makes a small ext4 file system on a loop device and mounts it:
// unlike tmpfs it can be forced read-only under an open file, as the kernel
// does on a disk error (errors=remount-ro), with "remount,abort".
func mountExt4(t *testing.T) (dir, dev string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the read-only test mounts a loop device and needs root, which CI provides; not root here")
		}
		t.Skip("needs root to mount an ext4 loop device (a real read-only file system); skipped")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s for a real ext4 file system: %v", tool, err)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device available (%v); skipped", err)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	dir = t.TempDir()
	if err := syscall.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) }) // already unmounted by a test that remounts
	return dir, dev
}

func TestReadOnlyFileSystemFailsCleanly(t *testing.T) {
	dir, dev := mountExt4(t)
	path := filepath.Join(dir, "tocsin.db")
	const before = 5
	db, logs := openWithApproved(t, path, before)

	// The file system turns read-only under the open store.
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, "abort"); err != nil {
		t.Fatalf("remount,abort: %v", err)
	}
	for i, err := range bigUpdates(t, db, false, "failed", 4, 16<<10) {
		if tocsin.ErrorCode(err) != tocsin.CodeUnavailable || !errors.Is(err, syscall.EROFS) {
			t.Errorf("Update %d on a read-only file system = %v, want unavailable wrapping EROFS", i, err)
		}
		if msg := tocsin.ErrorMessage(err); !strings.Contains(msg, "read-only") || !strings.Contains(msg, "nothing was saved") {
			t.Errorf("Update %d: message %q", i, msg)
		}
	}
	if err := db.Writable(); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Writable on a read-only file system = %v, want EROFS", err)
	}
	// Reads still work and show exactly what was committed.
	if s, _ := state(t, db); len(s.depts) != before || s.outbox != 0 {
		t.Errorf("on the read-only file system: %d broadcasts and outbox %d, want %d and 0", len(s.depts), s.outbox, before)
	}
	if got := logs.count(slog.LevelError, "store unwritable"); got != 1 {
		t.Errorf("logged the outage at ERROR %d times, want once", got)
	}
	// Growing the file made bbolt unmap it and fail to map it again; the
	// store got a read-only handle, which is what keeps the reads above
	// working.
	if got := logs.count(slog.LevelWarn, "store reopened read-only"); got != 1 {
		t.Errorf("reopened read-only %d times, want once", got)
	}

	// An aborted ext4 stays read-only until it is mounted again: close,
	// remount, reopen, and the committed data is there, the failed not.
	if err := db.Close(); err != nil {
		t.Fatalf("Close on a read-only file system: %v", err)
	}
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount again: %v", err)
	}
	db, err := Open(path, region.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, _ := state(t, db)
	if len(s.depts) != before || s.outbox != 0 {
		t.Errorf("after remounting: %d broadcasts and outbox %d, want %d and 0", len(s.depts), s.outbox, before)
	}
	mustUpdate(t, db, func(tx tocsin.Tx) error { _, err := tx.NewBroadcastID(); return err })
}
