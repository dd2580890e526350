package webui

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// loginLimiter slows down the source of failed logins, never a username
// for everyone: a clerk's typos behind an office NAT, or an attacker
// guessing `miit`, must not lock anyone else out.
//
// It counts failures under two keys: the client address, and the username
// at that address. Each key allows a number of failures (perUser for the
// username at an address, perAddr for the address, which many people may
// share); from then on every further failure locks that key for a time
// that starts at lockout and doubles with each failure, up to maxLockout.
// A key quiet for maxLockout is forgotten. A success clears its username
// at its address.
//
// An attempt is reserved, counted as a failure, before the password is
// hashed, in one step under the lock: concurrent guesses see each other,
// so no more than the allowance is ever checked.
type loginLimiter struct {
	perUser, perAddr    int
	lockout, maxLockout time.Duration

	mu   sync.Mutex
	keys map[string]*failures // guarded by mu
}

// failures is one key's record.
type failures struct {
	n           int       // failures (and attempts in progress) counted
	last        time.Time // of the latest attempt
	lockedUntil time.Time
}

// maxLimiterKeys bounds the limiter's memory; beyond it, forgotten keys
// are dropped before a new one is added.
const maxLimiterKeys = 10000

func newLoginLimiter(perUser, perAddr int, lockout, maxLockout time.Duration) *loginLimiter {
	return &loginLimiter{perUser: perUser, perAddr: perAddr, lockout: lockout, maxLockout: maxLockout,
		keys: map[string]*failures{}}
}

// loginAttempt is a reserved attempt, counted as a failure until it is
// refunded or succeeds.
type loginAttempt struct {
	l         *loginLimiter
	addr, ua  string
	now       time.Time
	finalized bool
}

// reserve counts an attempt from addr for username, or, if either key is
// locked, returns nil and how long until it is not.
func (l *loginLimiter) reserve(now time.Time, addr, username string) (*loginAttempt, time.Duration) {
	a := &loginAttempt{l: l, addr: "addr:" + addr, ua: "user:" + strings.ToLower(username) + "@" + addr, now: now}
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []string{a.addr, a.ua} {
		if f := l.get(now, k); f != nil && f.lockedUntil.After(now) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	if wait > 0 {
		return nil, wait
	}
	l.count(now, a.addr, l.perAddr)
	l.count(now, a.ua, l.perUser)
	return a, 0
}

// count adds a failure to key, locking it once past allowed.
func (l *loginLimiter) count(now time.Time, key string, allowed int) {
	f := l.get(now, key)
	if f == nil {
		if len(l.keys) >= maxLimiterKeys {
			for k := range l.keys {
				l.get(now, k)
			}
		}
		f = &failures{}
		l.keys[key] = f
	}
	f.n++
	f.last = now
	if f.n >= allowed {
		f.lockedUntil = now.Add(l.lockFor(f.n - allowed))
	}
}

// lockFor is the lockout after the excess-th failure beyond the allowance:
// lockout doubled excess times, at most maxLockout.
func (l *loginLimiter) lockFor(excess int) time.Duration {
	d := l.lockout
	for range excess {
		if d >= l.maxLockout/2 {
			return l.maxLockout
		}
		d *= 2
	}
	return min(d, l.maxLockout)
}

// get returns key's record, dropping it if it is forgotten. Callers hold
// mu.
func (l *loginLimiter) get(now time.Time, key string) *failures {
	f := l.keys[key]
	if f != nil && !f.lockedUntil.After(now) && now.Sub(f.last) >= l.maxLockout {
		delete(l.keys, key)
		return nil
	}
	return f
}

// refund takes back an attempt whose password was never checked (the
// server was too busy, or the store failed): it was no guess.
func (a *loginAttempt) refund() { a.finish(false) }

// succeeded clears the username at this address and takes back the
// attempt from the address's count.
func (a *loginAttempt) succeeded() { a.finish(true) }

func (a *loginAttempt) finish(success bool) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.finalized {
		return
	}
	a.finalized = true
	l.uncount(a.addr, l.perAddr)
	if success {
		delete(l.keys, a.ua)
	} else {
		l.uncount(a.ua, l.perUser)
	}
}

// uncount takes one failure back from key, and the lock it brought.
func (l *loginLimiter) uncount(key string, allowed int) {
	f := l.keys[key]
	if f == nil {
		return
	}
	f.n--
	switch {
	case f.n <= 0:
		delete(l.keys, key)
	case f.n < allowed:
		f.lockedUntil = time.Time{}
	default:
		f.lockedUntil = f.last.Add(l.lockFor(f.n - allowed))
	}
}

// clientAddr is the address failed logins are counted against: the peer's
// IP, or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not one (the rightmost entries are the ones our
// own proxies wrote; anything left of an untrusted hop is the client's to
// invent). Without trusted proxies, forwarding headers are ignored and
// everyone behind a proxy shares its address.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer.String() // a malformed hop: trust nothing beyond our proxy
		}
		if !s.trusted(hop) {
			return hop.Unmap().String()
		}
		peer = hop
	}
	return peer.Unmap().String()
}

func (s *Server) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
