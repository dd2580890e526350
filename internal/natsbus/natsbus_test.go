package natsbus_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
)

// testNATS is an embedded server with the coordinator connected.
type testNATS struct {
	embedded *natsbus.Embedded
	bus      *natsbus.Bus
	keys     *natsbus.Keys
	resolver *natsbus.Resolver
	creds    map[string]string            // .creds text by provider id
	accounts map[string]string            // account public key by provider id
	users    map[string]natsbus.UserCreds // current user by provider id
}

func startNATS(t *testing.T) *testNATS {
	t.Helper()
	return fromKit(testkit.MustNATS(t, slog.New(slog.DiscardHandler)))
}

func fromKit(n *testkit.NATS) *testNATS {
	return &testNATS{embedded: n.Embedded, bus: n.Bus, keys: n.Keys, resolver: n.Resolver,
		creds: map[string]string{}, accounts: map[string]string{}, users: map[string]natsbus.UserCreds{}}
}

// addProvider gives a provider an account, pushed to the server, a user
// and a consumer, the way the registry does, without the store.
func (n *testNATS) addProvider(t *testing.T, id string) {
	t.Helper()
	key, err := natsbus.NewProviderAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	n.accounts[id] = key
	acct := natsbus.ProviderAccount{ID: id, Account: key}
	u, err := n.keys.ProviderUser(acct, natsbus.ProviderLimits{})
	if err != nil {
		t.Fatal(err)
	}
	n.users[id], n.creds[id] = u, u.Text
	n.pushAccount(t, acct)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.bus.EnsureProviderConsumer(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func (n *testNATS) pushAccount(t *testing.T, acct natsbus.ProviderAccount) {
	t.Helper()
	token, err := n.keys.ProviderAccountJWT(acct, natsbus.ProviderLimits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.resolver.Push(ctx, token); err != nil {
		t.Fatal(err)
	}
}

func (n *testNATS) connect(t *testing.T, id string) *nats.Conn {
	t.Helper()
	nc, _ := n.connectErrs(t, id)
	return nc
}

// connectErrs connects as provider id and returns the errors the server
// reports asynchronously (permission violations among them). Errors beyond
// the channel's buffer are dropped rather than block the client.
func (n *testNATS) connectErrs(t *testing.T, id string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opt, err := natsbus.CredsOption(n.creds[id])
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.embedded.ClientURL(), opt,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", id, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func (n *testNATS) publish(t *testing.T, provider, broadcast string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, _ := json.Marshal(map[string]string{"broadcast_id": broadcast, "type": "broadcast"})
	if _, err := n.bus.JetStream().Publish(ctx, natsbus.DispatchSubject(provider), data, jetstream.WithMsgID(broadcast+"."+provider)); err != nil {
		t.Fatal(err)
	}
}

func TestProvidersAddedOneByOneCanPull(t *testing.T) {
	n := startNATS(t)
	ids := []string{"aaa", "bbb", "ccc", "ddd"}
	for _, id := range ids {
		n.addProvider(t, id)
	}
	for _, id := range ids {
		n.publish(t, id, "BC1")
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			js, err := jetstream.New(n.connect(t, id))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cons, err := js.Consumer(ctx, natsbus.DispatchStream, id)
			if err != nil {
				t.Fatalf("consumer info as %s: %v", id, err)
			}
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for m := range batch.Messages() {
				got++
				if m.Subject() != natsbus.DispatchSubject(id) {
					t.Errorf("got %s", m.Subject())
				}
				if err := m.DoubleAck(ctx); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
			if got != 1 {
				t.Fatalf("fetched %d messages, want 1 (%v)", got, batch.Error())
			}
		})
	}
}
