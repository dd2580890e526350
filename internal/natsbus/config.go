package natsbus

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// ProviderLimits bound what one provider can make the coordinator store
// and do, whatever it sends.
//
//   - MaxPayload, MaxConnections, MaxSubscriptions are nats-server's own
//     limits on the provider's account, in its account JWT (and its
//     user's):
//     a bigger publish, one connection or subscription too many, is refused
//     by the server before Tocsin sees it.
//   - ReceiptBacklog is how many of a provider's receipts TOCSIN_RECEIPTS
//     keeps (its per-subject limit): however fast a provider publishes, it
//     holds at most ReceiptBacklog × the stream's maximum message size, and
//     what it pushes out is its own oldest receipts, never another's.
//   - ReceiptsPerSecond and ReceiptBurst are a token bucket the coordinator
//     keeps for each provider: NATS has no message-rate limit for an
//     account. Receipts beyond it wait in the stream (they are not dropped:
//     an honest burst is slowed, not lost) and never hold up another
//     provider's.
type ProviderLimits struct {
	MaxPayload        int
	MaxConnections    int
	MaxSubscriptions  int
	ReceiptBacklog    int64
	ReceiptsPerSecond float64
	ReceiptBurst      int
}

func (l ProviderLimits) orDefault() ProviderLimits {
	if l == (ProviderLimits{}) {
		return DefaultProviderLimits
	}
	return l
}

// receiptHeaderRoom is what a receipt's NATS headers may add to its JSON
// (a Nats-Msg-Id, a trace id): nats-server counts them in a message's size.
const receiptHeaderRoom = 1 << 10

// DefaultProviderLimits are generous for an honest provider: the
// reference provider sends three receipts per broadcast, so 2,000 a second
// sustains the 200 emergencies a second a province's worst day may bring
// (600 receipts a second each provider) with room to catch up after an
// outage, and a burst of 10,000 covers the backlog of a minute's outage;
// receipts are applied many to a transaction, so the rate bounds the
// store's work, not its fsyncs. (200 a second, the first choice, held
// receipts back 37 s at p99 in BenchmarkReceiptLag and flagged 1,205
// emergencies late that were not.) 32 connections per provider allow a
// cluster of sending gateways.
var DefaultProviderLimits = ProviderLimits{
	MaxPayload:        tocsin.MaxReceiptBytes + receiptHeaderRoom,
	MaxConnections:    32,
	MaxSubscriptions:  1000,
	ReceiptBacklog:    10_000,
	ReceiptsPerSecond: 2000,
	ReceiptBurst:      10_000,
}

// Receipt stream limits. ReceiptDedupWindow is the smallest window
// nats-server accepts (it cannot be switched off on a stream of its own
// subjects): deduplication by Nats-Msg-Id is stream-wide, across every
// provider's subject, and a provider chooses its ids, so a window of any
// length let one provider make the stream drop another's receipts by
// sending their ids first. Applying a receipt twice does nothing (see
// tocsin.Service.ApplyReceipts), so a provider's retried publish needs no
// deduplication. The stream has no byte limit of its own: JetStream
// reserves a stream's MaxBytes against the disk when the stream is made,
// so a backstop of any useful size stopped Tocsin from starting on a small
// disk; each provider's subject is bounded instead (ReceiptBacklog
// messages of at most receiptMaxMsgSize, and the streams' MaxAge).
const (
	ReceiptDedupWindow = 100 * time.Millisecond
	receiptMaxMsgSize  = tocsin.MaxReceiptBytes + receiptHeaderRoom
)

// ServerConfig describes the NATS server Tocsin needs. The embedded server
// is started from it; a cluster node runs deploy/nats/node.conf, which
// includes Trust() written to a file.
type ServerConfig struct {
	Listen   string // host:port for clients
	StoreDir string // JetStream file storage
	// ResolverDir is where the full account resolver keeps the account
	// JWTs pushed to it.
	ResolverDir string
	Trust       Trust
	// Extra is appended verbatim (cluster blocks, server names).
	Extra string
}

// Trust is what every server needs to know of the coordinator's keys: the
// operator it trusts, the system account, and the accounts it starts
// with (the system account and the coordinator's), preloaded into its
// resolver. Provider accounts are not in it: they are pushed at run time.
type Trust struct {
	OperatorJWT   string
	SystemAccount string
	Preload       map[string]string // account public key -> JWT
}

// NewTrust signs the JWTs of the operator, the system account and the
// coordinator's account.
func (k *Keys) NewTrust() (Trust, error) {
	op, err := k.OperatorJWT()
	if err != nil {
		return Trust{}, err
	}
	sys, err := k.SystemAccountJWT()
	if err != nil {
		return Trust{}, err
	}
	coord, err := k.CoordinatorAccountJWT()
	if err != nil {
		return Trust{}, err
	}
	return Trust{OperatorJWT: op, SystemAccount: k.SystemAccount(),
		Preload: map[string]string{k.SystemAccount(): sys, k.CoordinatorAccountKey(): coord}}, nil
}

// providerSubjects are the coordinator-account subjects a provider's
// account imports, and all its user may publish to: its consumer's info
// and pull requests, the acks of its own messages, and its receipt
// subject. Nothing else of the coordinator's JetStream is visible but
// $JS.API.INFO, the account summary (counts and usage, no messages):
// importing it is what tells the server that this account's JetStream API
// lives in the coordinator's account, and clients ask it before anything.
func providerSubjects(id string) []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.CONSUMER.INFO." + DispatchStream + "." + id,
		"$JS.API.CONSUMER.MSG.NEXT." + DispatchStream + "." + id,
		"$JS.ACK." + DispatchStream + "." + id + ".>",
		ReceiptSubject(id),
	}
}

// Render writes the configuration in nats-server's format.
func (c ServerConfig) Render() string {
	var b strings.Builder
	host, port := splitHostPort(c.Listen)
	if port == 0 {
		port = -1 // nats-server's "any free port"; 0 would mean 4222
	}
	fmt.Fprintf(&b, "# Generated by tocsin at each start; edits are overwritten.\n")
	fmt.Fprintf(&b, "host: %s\nport: %d\n", quote(host), port)
	fmt.Fprintf(&b, "max_payload: 1MB\n")
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n  # Every write is fsynced: a dispatch counts as published only once\n  # JetStream acknowledged it, and that must survive a power cut.\n  sync_interval: always\n}\n", quote(c.StoreDir))
	fmt.Fprintf(&b, "resolver {\n  type: full\n  dir: %s\n  allow_delete: false\n  interval: \"2m\"\n  # An account no server has is refused after this, within a\n  # client's connect timeout.\n  timeout: \"1s\"\n}\n", quote(c.ResolverDir))
	b.WriteString(c.Trust.Render())
	if c.Extra != "" {
		b.WriteString(c.Extra)
		b.WriteString("\n")
	}
	return b.String()
}

// Render writes the trust in nats-server's format: what a cluster node
// includes (deploy/nats/node.conf). It holds public keys and signed JWTs,
// no secret.
func (t Trust) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "operator: %s\nsystem_account: %s\nresolver_preload: {\n", quote(t.OperatorJWT), quote(t.SystemAccount))
	keys := make([]string, 0, len(t.Preload))
	for k := range t.Preload {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := ""
		if ac, err := jwt.DecodeAccountClaims(t.Preload[k]); err == nil {
			name = " # " + ac.Name
		}
		fmt.Fprintf(&b, "  %s: %s%s\n", k, quote(t.Preload[k]), name)
	}
	b.WriteString("}\n")
	return b.String()
}

func quote(s string) string { return strconv.Quote(s) }

func splitHostPort(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, 4222
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		port = 4222
	}
	return strings.Trim(addr[:i], "[]"), port
}
