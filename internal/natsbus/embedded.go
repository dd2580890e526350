package natsbus

import (
	"github.com/tocsin-dev/tocsin/internal/atomicfile"

	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Embedded is a NATS server with JetStream running inside the coordinator.
type Embedded struct {
	srv  *server.Server
	path string // the generated configuration file
	log  *slog.Logger

	mu  sync.Mutex   // serialises reconfiguration
	cfg ServerConfig // guarded by mu

	// CoordinatorPassword is the coordinator's password for this run; it
	// is made fresh at each start and never written down in the clear.
	CoordinatorPassword string
}

// StartEmbedded writes the server configuration under dir and starts the
// server from it, storing JetStream data in dir/jetstream.
func StartEmbedded(dir, listen string, providers []ProviderUser, log *slog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	password := RandomSecret()
	hash, err := HashPassword(password, bcrypt.MinCost) // random 32 bytes: cost buys nothing
	if err != nil {
		return nil, err
	}
	e := &Embedded{
		path: filepath.Join(dir, "nats.conf"), log: log, CoordinatorPassword: password,
		cfg: ServerConfig{
			Listen: listen, StoreDir: filepath.Join(dir, "jetstream"),
			CoordinatorPasswordHash: hash, Providers: providers,
		},
	}
	opts, err := e.writeConfig()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: new server: %w", err)
	}
	// The server formats debug and trace lines only for a logger that
	// shows them (the coordinator's with --nats-debug): they are many.
	verbose := log.Enabled(context.Background(), slog.LevelDebug)
	srv.SetLoggerV2(serverLogger{log.With(slog.String("component", "nats-server"))}, verbose, verbose, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: server on %s did not become ready", listen)
	}
	e.srv = srv
	return e, nil
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

// SetProviders reconfigures the running server for this set of providers,
// without dropping connections.
func (e *Embedded) SetProviders(providers []ProviderUser) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.Providers = providers
	opts, err := e.writeConfig()
	if err != nil {
		return err
	}
	// Reload twice. A reload that adds an account resolves the new
	// account's service imports against the coordinator account's exports
	// as they stood before that reload, so the newest provider's imports
	// stay unlinked ("no responders") until the next reload; a second
	// reload of the same configuration links them.
	// TestProvidersAddedOneByOneCanPull guards this.
	for range 2 {
		if err := e.srv.ReloadOptions(opts); err != nil {
			return fmt.Errorf("nats: reload: %w", err)
		}
	}
	return nil
}

// ClientURL is where clients connect.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// RandomSecret returns 32 random bytes in URL-safe base64.
func RandomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashPassword hashes a NATS password with bcrypt, the form nats-server
// accepts in its configuration.
func HashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("nats: hash password: %w", err)
	}
	return string(h), nil
}

// serverLogger routes nats-server's logs into slog.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
