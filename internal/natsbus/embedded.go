package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
)

// Embedded is a NATS server with JetStream running inside the coordinator,
// in operator mode with a full account resolver under its folder.
type Embedded struct {
	path string // the generated configuration file
	log  *slog.Logger

	mu  sync.Mutex   // serialises restarts
	cfg ServerConfig // written at start, never changed after
	// srv is the server running (or the one shut down while a restart
	// makes the next): swapped under mu, read without it, so that
	// readiness need not wait out a restart to say JetStream is off.
	srv  atomic.Pointer[server.Server]
	port int // the client port, kept across restarts

	storeFailed atomic.Bool // a stream's store failed to write since the server started

	// AfterRestart, when set, is called after KeepJetStream restarted the
	// server: messages it acknowledged before may be lost.
	AfterRestart func(ctx context.Context)

	// CoordinatorCreds is a .creds file's text for the coordinator's user,
	// issued at each start and never written down.
	CoordinatorCreds string
}

// StartEmbedded writes the server configuration under dir and starts the
// server from it, storing JetStream data in dir/jetstream and account
// JWTs in dir/accounts. The server trusts keys' operator; provider
// accounts reach its resolver at run time (Resolver.Push).
func StartEmbedded(dir, listen string, keys *Keys, log *slog.Logger) (*Embedded, error) {
	if keys == nil {
		return nil, errors.New("nats: the embedded server needs the operator's keys (LoadKeys)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	trust, err := keys.NewTrust()
	if err != nil {
		return nil, err
	}
	user, err := keys.CoordinatorUser()
	if err != nil {
		return nil, err
	}
	// nats-server keeps JetStream in a "jetstream" folder under store_dir.
	if err := adoptPasswordEraStore(filepath.Join(dir, "jetstream", "jetstream"), keys.CoordinatorAccountKey(), log); err != nil {
		return nil, err
	}
	e := &Embedded{
		path: filepath.Join(dir, "nats.conf"), log: log, CoordinatorCreds: user.Text,
		cfg: ServerConfig{
			Listen: listen, StoreDir: filepath.Join(dir, "jetstream"), ResolverDir: filepath.Join(dir, "accounts"),
			Trust: trust,
		},
	}
	opts, err := e.writeConfig()
	if err != nil {
		return nil, err
	}
	srv, err := e.newServer(opts)
	if err != nil {
		return nil, err
	}
	e.srv.Store(srv)
	e.port = srv.Addr().(*net.TCPAddr).Port
	return e, nil
}

// adoptPasswordEraStore moves the streams of a data folder from before
// NATS accounts were JWTs to where the server now looks for them.
// JetStream keeps each account's streams in a folder named after the
// account: it was the name TOCSIN; in operator mode it is the account's
// public key. Dispatches published but not yet pulled are kept so.
func adoptPasswordEraStore(storeDir, account string, log *slog.Logger) error {
	old := filepath.Join(storeDir, CoordinatorAccount)
	cur := filepath.Join(storeDir, account)
	if _, err := os.Stat(old); err != nil {
		return nil // nothing from then
	}
	if _, err := os.Stat(cur); err == nil {
		log.Warn("JetStream store holds streams of both the password-era account and its JWT successor; keeping the latter",
			slog.String("old", old), slog.String("current", cur))
		return nil
	}
	if err := os.Rename(old, cur); err != nil {
		return fmt.Errorf("nats: adopt the password-era streams: %w", err)
	}
	log.Info("JetStream streams of the password-era account moved to the coordinator's JWT account", slog.String("account", account))
	return nil
}

// CoordinatorOption authenticates the coordinator's connection.
func (e *Embedded) CoordinatorOption() nats.Option {
	opt, err := CredsOption(e.CoordinatorCreds)
	if err != nil {
		panic(err) // issued by StartEmbedded itself
	}
	return opt
}

func (e *Embedded) newServer(opts *server.Options) (*server.Server, error) {
	// nats-server reports a port it cannot bind only in its log and then
	// never becomes ready: try the address first, to fail at once and say
	// why.
	if opts.Port > 0 {
		addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("nats: client address %s: %w (is another tocsin or NATS server using it?)", addr, err)
		}
		l.Close()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: new server: %w", err)
	}
	// The server formats debug and trace lines only for a logger that
	// shows them (the coordinator's with --nats-debug): they are many.
	verbose := e.log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(serverLogger{log: e.log.With(slog.String("component", "nats-server")), onError: e.noticeError}, verbose, verbose, false)
	srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: server on %s:%d did not become ready (is its port in use?)", opts.Host, opts.Port)
	}
	return srv, nil
}

// writeConfig renders the current configuration to the file and parses it
// back into server options. Callers hold mu or own e exclusively.
func (e *Embedded) writeConfig() (*server.Options, error) {
	if err := atomicfile.Write(e.path, []byte(e.cfg.Render()), 0o600); err != nil {
		return nil, fmt.Errorf("nats: write config: %w", err)
	}
	opts, err := server.ProcessConfigFile(e.path)
	if err != nil {
		return nil, fmt.Errorf("nats: config %s: %w", e.path, err)
	}
	opts.NoSigs = true // the coordinator owns signal handling
	opts.ServerName = "tocsin"
	return opts, nil
}

// ClientURL is where clients connect.
func (e *Embedded) ClientURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv.Load().ClientURL()
}

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srv.Load().Shutdown()
	e.srv.Load().WaitForShutdown()
}

// KeepJetStream watches the server's JetStream until ctx ends. When its
// store cannot write (a full disk), nats-server switches JetStream off and
// leaves it off until restarted: every publish then goes unanswered while
// the coordinator looks healthy. Once the store takes writes again, the
// server is restarted on the same address and store; clients reconnect by
// themselves.
func (e *Embedded) KeepJetStream(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reported := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if e.JetStreamOn() == nil {
			reported = false
			continue
		}
		if err := probeWritable(e.cfg.StoreDir); err != nil {
			if !reported {
				e.log.Error("JetStream is off: its store cannot write; it restarts once it can", slog.Any("error", err))
				reported = true
			}
			continue
		}
		e.log.Warn("JetStream is off but its store takes writes again; restarting the embedded NATS server")
		if err := e.restart(); err != nil {
			return fmt.Errorf("nats: restart for JetStream: %w", err)
		}
		e.log.Info("embedded NATS server restarted with JetStream")
		if e.AfterRestart != nil {
			e.AfterRestart(ctx)
		}
	}
}

// ErrJetStreamOff is how readiness names a JetStream the server switched
// off, or a stream whose store failed to write.
var ErrJetStreamOff = errors.New("nats: JetStream cannot store messages (its disk was full or failing); the embedded server restarts once it can write")

// JetStreamOn returns ErrJetStreamOff while the server's JetStream is off
// or one of its streams has failed to write.
func (e *Embedded) JetStreamOn() error {
	if !e.srv.Load().JetStreamEnabled() || e.storeFailed.Load() {
		return ErrJetStreamOff
	}
	return nil
}

// noticeError watches the server's errors for a stream store that failed
// to write. nats-server keeps such a stream refusing every message until
// it is restarted, without switching JetStream off: a full disk freed
// later would leave receipts refused for ever while all looked well.
func (e *Embedded) noticeError(msg string) {
	if strings.Contains(strings.ToLower(msg), "critical write error") {
		e.storeFailed.Store(true)
	}
}

// restart replaces the server with a new one from the same configuration.
func (e *Embedded) restart() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	opts, err := e.writeConfig()
	if err != nil {
		return err
	}
	opts.Port = e.port // keep the address clients know
	old := e.srv.Load()
	old.Shutdown()
	old.WaitForShutdown()
	e.storeFailed.Store(false)
	srv, err := e.newServer(opts)
	if err != nil {
		return err
	}
	e.srv.Store(srv)
	return nil
}

// probeWritable writes, syncs and removes a small file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 256<<10)); err != nil {
		return err
	}
	return f.Sync()
}

// serverLogger routes nats-server's logs into slog, and its errors to
// onError too.
type serverLogger struct {
	log     *slog.Logger
	onError func(msg string)
}

func (l serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.error(fmt.Sprintf(format, v...)) }

func (l serverLogger) error(msg string) {
	l.log.Error(msg)
	if l.onError != nil {
		l.onError(msg)
	}
}
func (l serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
