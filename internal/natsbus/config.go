package natsbus

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// ProviderUser is a provider's NATS login. PasswordHash is a bcrypt hash,
// which nats-server checks itself, so the plain password is never stored.
type ProviderUser struct {
	ID           string
	PasswordHash string
}

// ProviderLimits bound what one provider can make the coordinator store
// and do, whatever it sends. They are in one place so that the NATS
// accounts issue can move the account limits into each provider's account
// JWT (jwt.OperatorLimits: Payload, Conn, Subs) without hunting for them.
//
//   - MaxPayload, MaxConnections, MaxSubscriptions are nats-server's own
//     limits on the provider's account (the accounts block's "limits"):
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
// is started from it, and a cluster node is configured with the same text
// plus its cluster block (see docker-compose.yml).
type ServerConfig struct {
	Listen   string // host:port for clients
	StoreDir string // JetStream file storage
	// CoordinatorPasswordHash is the bcrypt hash of the coordinator's
	// password.
	CoordinatorPasswordHash string
	Providers               []ProviderUser
	// Limits are each provider account's; zero means DefaultProviderLimits.
	Limits ProviderLimits
	// Extra is appended verbatim (cluster blocks, server names).
	Extra string
}

// providerAPISubjects are the coordinator-account subjects a provider's
// account imports: its consumer's info and pull requests, and the acks of
// its own messages. Nothing else of the coordinator's JetStream is visible
// but $JS.API.INFO, the account summary (counts and usage, no messages):
// importing it is what tells the server that this account's JetStream API
// lives in the coordinator's account, and clients ask it before anything.
func providerAPISubjects(id string) []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.CONSUMER.INFO." + DispatchStream + "." + id,
		"$JS.API.CONSUMER.MSG.NEXT." + DispatchStream + "." + id,
		"$JS.ACK." + DispatchStream + "." + id + ".>",
	}
}

// Render writes the configuration in nats-server's format.
func (c ServerConfig) Render() string {
	var b strings.Builder
	host, port := splitHostPort(c.Listen)
	if port == 0 {
		port = -1 // nats-server's "any free port"; 0 would mean 4222
	}
	fmt.Fprintf(&b, "# Generated by tocsin from its provider registry; edits are overwritten.\n")
	fmt.Fprintf(&b, "host: %s\nport: %d\n", quote(host), port)
	fmt.Fprintf(&b, "max_payload: 1MB\n")
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n  # Every write is fsynced: a dispatch counts as published only once\n  # JetStream acknowledged it, and that must survive a power cut.\n  sync_interval: always\n}\n", quote(c.StoreDir))
	b.WriteString(c.Accounts())
	if c.Extra != "" {
		b.WriteString(c.Extra)
		b.WriteString("\n")
	}
	return b.String()
}

// Accounts renders the accounts block alone: what a cluster node includes
// from the file the coordinator keeps current (see docker-compose.yml).
func (c ServerConfig) Accounts() string {
	var b strings.Builder
	b.WriteString("accounts {\n")
	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n", CoordinatorAccount)
	fmt.Fprintf(&b, "    users: [ { user: %s, password: %s } ]\n", quote(CoordinatorUser), quote(c.CoordinatorPasswordHash))
	providers := slices.Clone(c.Providers)
	slices.SortFunc(providers, func(a, b ProviderUser) int { return strings.Compare(a.ID, b.ID) })
	if len(providers) > 0 {
		b.WriteString("    exports: [\n")
		for _, p := range providers {
			acct := ProviderAccount(p.ID)
			for _, s := range providerAPISubjects(p.ID) {
				resp := ""
				if strings.Contains(s, ".MSG.NEXT.") {
					resp = ", response_type: stream"
				}
				fmt.Fprintf(&b, "      { service: %s%s, accounts: [%s] }\n", quote(s), resp, acct)
			}
			fmt.Fprintf(&b, "      { service: %s, accounts: [%s] }\n", quote(ReceiptSubject(p.ID)), acct)
		}
		b.WriteString("    ]\n")
	}
	b.WriteString("  }\n")
	lim := c.Limits
	if lim == (ProviderLimits{}) {
		lim = DefaultProviderLimits
	}
	for _, p := range providers {
		acct := ProviderAccount(p.ID)
		fmt.Fprintf(&b, "  %s {\n", acct)
		fmt.Fprintf(&b, "    limits: { max_payload: %d, max_connections: %d, max_subscriptions: %d }\n",
			lim.MaxPayload, lim.MaxConnections, lim.MaxSubscriptions)
		imports := append(providerAPISubjects(p.ID), ReceiptSubject(p.ID))
		quoted := make([]string, len(imports))
		for i, s := range imports {
			quoted[i] = quote(s)
		}
		fmt.Fprintf(&b, "    users: [ { user: %s, password: %s, permissions: {\n", quote(p.ID), quote(p.PasswordHash))
		fmt.Fprintf(&b, "      publish: { allow: [%s] }\n", strings.Join(quoted, ", "))
		fmt.Fprintf(&b, "      subscribe: { allow: [\"_INBOX.>\"] }\n    } } ]\n")
		b.WriteString("    imports: [\n")
		for _, s := range imports {
			fmt.Fprintf(&b, "      { service: { account: %s, subject: %s } }\n", CoordinatorAccount, quote(s))
		}
		b.WriteString("    ]\n  }\n")
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
