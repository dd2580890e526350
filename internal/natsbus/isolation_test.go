package natsbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// waitPermissionViolation waits for the server to report a permissions
// violation naming subject (and what, "publish" or "subscription"). Other
// errors on the channel are skipped.
func waitPermissionViolation(t *testing.T, errs <-chan error, what, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case err := <-errs:
			msg := strings.ToLower(err.Error())
			if errors.Is(err, nats.ErrPermissionViolation) &&
				strings.Contains(msg, strings.ToLower(what)) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
			seen = append(seen, err.Error())
		case <-deadline:
			t.Fatalf("no permissions violation for %s to %q reported (other errors: %q)", what, subject, seen)
		}
	}
}

// subjectCounts returns how many messages stream holds on each subject,
// as the coordinator sees it.
func subjectCounts(t *testing.T, js jetstream.JetStream, stream string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

// consumerInfo returns the state of a provider's dispatch consumer.
func consumerInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	return streamConsumerInfo(t, js, natsbus.DispatchStream, name)
}

func streamConsumerInfo(t *testing.T, js jetstream.JetStream, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestProviderIsolation checks DESIGN.md's "a provider's NATS user may read
// only its own dispatches and publish only its own receipts", with the
// standard client and default settings.
func TestProviderIsolation(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	n.addProvider(t, "cmcc")
	n.addProvider(t, "cucc")
	n.publish(t, "cmcc", "BC1")
	n.publish(t, "cucc", "BC1")
	coord := n.bus.JetStream()

	nc, errs := n.connectErrs(t, "cmcc")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("own consumer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, natsbus.DispatchStream, "cmcc")
		if err != nil {
			t.Fatalf("cmcc's own consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if m.Subject() != natsbus.DispatchSubject("cmcc") {
				t.Errorf("cmcc got a message on %s", m.Subject())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
		}
		if got != 1 {
			t.Fatalf("fetched %d messages, want 1 (%v)", got, batch.Error())
		}
	})

	t.Run("other consumer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := js.Consumer(ctx, natsbus.DispatchStream, "cucc"); err == nil {
			t.Fatal("cmcc looked up cucc's consumer")
		}
		waitPermissionViolation(t, errs, "publish", "$JS.API.CONSUMER.INFO."+natsbus.DispatchStream+".cucc")
	})

	t.Run("subscribe elsewhere", func(t *testing.T) {
		for _, subj := range []string{natsbus.DispatchSubject("cucc"), natsbus.DispatchPrefix + ">", natsbus.ReceiptPrefix + ">"} {
			sub, err := nc.SubscribeSync(subj)
			if err != nil {
				t.Fatalf("subscribe %s: %v", subj, err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			waitPermissionViolation(t, errs, "subscription", subj)
			n.publish(t, "cucc", "BC-"+subj) // a fresh dispatch for cucc while cmcc listens
			if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
				t.Errorf("cmcc's subscription to %s received %s: %s", subj, m.Subject, m.Data)
			}
			_ = sub.Unsubscribe()
		}
	})

	t.Run("publish elsewhere", func(t *testing.T) {
		for _, subj := range []string{
			natsbus.ReceiptSubject("cucc"),
			natsbus.DispatchSubject("cucc"),
			natsbus.DispatchSubject("cmcc"), // not even into its own dispatches
			"$JS.API.CONSUMER.MSG.NEXT." + natsbus.DispatchStream + ".cucc",
			"$JS.ACK." + natsbus.DispatchStream + ".cucc.1.1.1.0.0",
			"$JS.API.CONSUMER.CREATE." + natsbus.DispatchStream,
			"$JS.API.CONSUMER.DELETE." + natsbus.DispatchStream + ".cucc",
			"$JS.API.STREAM.INFO." + natsbus.DispatchStream,
			"$JS.API.STREAM.MSG.GET." + natsbus.DispatchStream,
			"$JS.API.DIRECT.GET." + natsbus.DispatchStream,
			"$JS.API.STREAM.PURGE." + natsbus.ReceiptStream,
		} {
			if err := nc.Publish(subj, []byte(`{"broadcast_id":"BC1","status":"delivered"}`)); err != nil {
				t.Fatalf("publish %s: %v", subj, err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			waitPermissionViolation(t, errs, "publish", subj)
		}
		// A JetStream publish is refused the same way: no PubAck comes.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if ack, err := js.Publish(ctx, natsbus.ReceiptSubject("cucc"), []byte(`{}`)); err == nil {
			t.Fatalf("cmcc's receipt on cucc's subject was stored: %+v", ack)
		}
		waitPermissionViolation(t, errs, "publish", natsbus.ReceiptSubject("cucc"))
	})

	t.Run("own receipt", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, err := js.Publish(ctx, natsbus.ReceiptSubject("cmcc"), []byte(`{"broadcast_id":"BC1","status":"received"}`))
		if err != nil {
			t.Fatalf("cmcc's own receipt: %v", err)
		}
		if ack.Stream != natsbus.ReceiptStream || ack.Duplicate {
			t.Fatalf("PubAck %+v, want a new message in %s", ack, natsbus.ReceiptStream)
		}
	})

	t.Run("nothing leaked", func(t *testing.T) {
		// Every forbidden publish above went out on the same connection
		// before the permitted receipt was acknowledged, so the streams
		// are settled.
		receipts := subjectCounts(t, coord, natsbus.ReceiptStream)
		if receipts[natsbus.ReceiptSubject("cucc")] != 0 || receipts[natsbus.ReceiptSubject("cmcc")] != 1 || len(receipts) != 1 {
			t.Errorf("receipt stream subjects %v, want only %s: 1", receipts, natsbus.ReceiptSubject("cmcc"))
		}
		dispatches := subjectCounts(t, coord, natsbus.DispatchStream)
		if dispatches[natsbus.DispatchSubject("cmcc")] != 1 || dispatches[natsbus.DispatchSubject("cucc")] != 4 {
			t.Errorf("dispatch stream subjects %v, want cmcc 1 and cucc 4 (nothing injected)", dispatches)
		}
		info := consumerInfo(t, coord, "cucc")
		if info.Delivered.Consumer != 0 || info.NumPending != 4 || info.NumAckPending != 0 {
			t.Errorf("cucc's consumer: delivered %d, pending %d, ack pending %d; want 0, 4, 0 (cmcc took nothing)",
				info.Delivered.Consumer, info.NumPending, info.NumAckPending)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		// A user of cmcc's account signed by a key the account does not
		// list; cmcc's JWT with cucc's seed; cucc's user claiming cmcc's
		// account; no credentials at all.
		forger, _ := nkeys.CreateAccount()
		forged := jwt.NewUserClaims(n.users["cmcc"].Key)
		forged.IssuerAccount = n.accounts["cmcc"]
		forgedJWT, err := forged.Encode(forger)
		if err != nil {
			t.Fatal(err)
		}
		cmccJWT, _, _ := natsbus.ParseCreds(n.creds["cmcc"])
		cuccSeed, _ := jwt.ParseDecoratedUserNKey([]byte(n.creds["cucc"]))
		cmccSeed, _ := jwt.ParseDecoratedUserNKey([]byte(n.creds["cmcc"]))
		cuccClaims, _ := jwt.DecodeUserClaims(mustJWT(t, n.creds["cucc"]))
		cuccClaims.IssuerAccount = n.accounts["cmcc"]
		stolenJWT, err := cuccClaims.Encode(forger)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			opt  nats.Option
		}{
			{"forged signer", userJWT(forgedJWT, cmccSeed)},
			{"someone else's seed", userJWT(cmccJWT, cuccSeed)},
			{"cucc's user in cmcc's account", userJWT(stolenJWT, cuccSeed)},
			{"none", nats.Name("anonymous")},
			{"a password", nats.UserInfo("cmcc", "anything")},
		} {
			nc, err := nats.Connect(n.embedded.ClientURL(), c.opt, nats.MaxReconnects(0))
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", c.name)
				continue
			}
			if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Errorf("%s: %v, want an authorization error", c.name, err)
			}
		}
	})
}

func userJWT(token string, kp nkeys.KeyPair) nats.Option {
	return nats.UserJWT(func() (string, error) { return token, nil }, kp.Sign)
}

func mustJWT(t *testing.T, creds string) string {
	t.Helper()
	token, _, err := natsbus.ParseCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	return token
}
