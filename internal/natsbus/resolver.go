package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Subjects of the servers' account resolvers, answered in the system
// account by every server running a full resolver (as nsc push uses them).
const (
	claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"
	serverPingSubject   = "$SYS.REQ.SERVER.PING"
)

// pushTimeout bounds one push; pushSpread is how long a push waits, after
// the first server's answer, for the others' (they answer together).
const (
	pushTimeout = 5 * time.Second
	pushSpread  = 2 * time.Second
)

// Resolver pushes account JWTs to the NATS servers' full resolvers through
// the system account: a push reaches every server of a cluster at once,
// takes effect at once (a revoked user is disconnected), and needs no
// configuration change nor reload.
type Resolver struct {
	nc  *nats.Conn
	log *slog.Logger
	// stop ends the recount loop, whose end Close waits for (done).
	stop context.CancelFunc
	done chan struct{}

	mu sync.Mutex
	// servers is how many servers answered the latest ping (at connect,
	// then every recountEvery): a push waits for as many answers, and
	// accepts fewer after pushSpread (the servers' resolvers also
	// exchange what they hold). Guarded by mu.
	servers int
}

// recountEvery is how often the resolver counts the servers again, so
// that a node lost, or added, changes how many answers a push waits for.
const recountEvery = time.Minute

// ConnectResolver connects to url as the system user. It keeps
// reconnecting for ever, like the coordinator's own connection.
func ConnectResolver(ctx context.Context, url string, keys *Keys, log *slog.Logger) (*Resolver, error) {
	user, err := keys.SystemUser()
	if err != nil {
		return nil, err
	}
	opt, err := CredsOption(user.Text)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opt, nats.Name("tocsin-resolver"), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s as the system user: %w", url, err)
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &Resolver{nc: nc, log: log, servers: 1, stop: stop, done: make(chan struct{})}
	r.setServers(r.countServers(ctx))
	go r.recount(loopCtx)
	return r, nil
}

// recount counts the servers again every recountEvery until Close. A
// count that fails keeps the last one: it only bounds how long a push
// waits for answers.
func (r *Resolver) recount(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(recountEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := r.countServers(ctx); n > 0 {
				r.setServers(n)
			}
		}
	}
}

func (r *Resolver) setServers(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers = max(1, n)
}

func (r *Resolver) serverCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers
}

// countServers asks every server to answer a ping, and counts the answers
// that come within a second.
func (r *Resolver) countServers(ctx context.Context) int {
	inbox := nats.NewInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		return 0
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Until connected (RetryOnFailedConnect), the ping waits in the
	// client's buffer; give the connection a moment.
	deadline := time.Now().Add(10 * time.Second)
	for !r.nc.IsConnected() && time.Now().Before(deadline) && !r.nc.IsClosed() {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := r.nc.PublishRequest(serverPingSubject, inbox, nil); err != nil {
		return 0
	}
	n := 0
	end := time.Now().Add(time.Second)
	for {
		wait := time.Until(end)
		if wait <= 0 {
			return n
		}
		if _, err := sub.NextMsg(wait); err != nil {
			return n
		}
		n++
	}
}

// Close stops the recount loop, waits for it, and closes the connection.
func (r *Resolver) Close() {
	r.stop()
	r.nc.Close() // also ends a count waiting for its answers
	<-r.done
}

// claimsUpdateReply is a server's answer to a claims update.
type claimsUpdateReply struct {
	Data *struct {
		Account string `json:"account"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
	Error *struct {
		Account     string `json:"account"`
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// ErrPushRefused is a server refusing an account JWT.
var ErrPushRefused = errors.New("nats: account JWT refused")

// Push sends an account JWT to every server's resolver and returns once
// each server known at connect has stored it, or, after the first has, at
// most pushSpread later.
func (r *Resolver) Push(ctx context.Context, accountJWT string) error {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 16)
	sub, err := r.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return fmt.Errorf("nats: push account: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.PublishRequest(claimsUpdateSubject, inbox, []byte(accountJWT)); err != nil {
		return fmt.Errorf("nats: push account: %w", err)
	}
	ok, servers := 0, r.serverCount()
	var spread <-chan time.Time
	for ok < servers {
		select {
		case m := <-replies:
			var rep claimsUpdateReply
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				return fmt.Errorf("nats: push account: unreadable answer %q: %w", m.Data, err)
			}
			if rep.Error != nil {
				return fmt.Errorf("%w: %s (%d)", ErrPushRefused, rep.Error.Description, rep.Error.Code)
			}
			if ok++; ok == 1 {
				spread = time.After(pushSpread)
			}
		case <-spread:
			// Until the next count, wait for as many as answered: a
			// node down must not slow every registration.
			r.setServers(ok)
			r.log.Warn("account pushed, but not every NATS server answered; the resolvers exchange it among themselves",
				slog.Int("answered", ok), slog.Int("servers", servers))
			return nil
		case <-ctx.Done():
			if ok > 0 {
				return nil
			}
			return fmt.Errorf("nats: push account: no server answered within %s: %w", pushTimeout, ctx.Err())
		}
	}
	return nil
}

// CredsOption is the nats.go option that authenticates with a .creds
// file's text.
func CredsOption(text string) (nats.Option, error) {
	userJWT, _, err := ParseCreds(text)
	if err != nil {
		return nil, err
	}
	kp, err := jwt.ParseDecoratedUserNKey([]byte(text))
	if err != nil {
		return nil, err
	}
	return nats.UserJWT(
		func() (string, error) { return userJWT, nil },
		func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) },
	), nil
}
