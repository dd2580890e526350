package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"github.com/tocsin-dev/tocsin/internal/natsbus"
)

// Raw is a raw durable chain: the least a durable dispatch path must do.
// HTTP in; the filing stored in bbolt, concurrent filings sharing one
// fsynced commit; its 201; one message per provider published to a
// JetStream file stream that syncs every write, each published message
// acknowledged; received by each provider's durable pull consumer, on a
// connection of its own. Batched (RAWB), the messages of concurrent
// filings are published together as one atomic batch (one sync, up to
// natsbus.MaxAtomicBatch messages), a lone message directly.
type Raw struct {
	Chain
	srv      *server.Server
	db       *bolt.DB
	nc, cnc  *nats.Conn
	httpSrv  *http.Server
	consumed []jetstream.ConsumeContext
	commits  chan *rawCommit
	queue    chan *rawPublish
	wg       sync.WaitGroup
	seq      atomic.Uint64
	failed   atomic.Pointer[error]
	value    []byte
}

// RawConfig names a raw chain's providers.
type RawConfig struct {
	Name    string
	Dir     string
	Batched bool
	// Providers get every filing; Fanout, beside them, a fan-out filing.
	Providers, Fanout []string
}

const rawStream = "RAW"

// StartRaw starts a raw chain in dir; Close stops it.
func StartRaw(ctx context.Context, cfg RawConfig) (*Raw, error) {
	r := &Raw{commits: make(chan *rawCommit, 1024), queue: make(chan *rawPublish, 4096)}
	r.Name, r.Arr = cfg.Name, NewArrivals()
	r.Providers, r.Fanout = len(cfg.Providers), len(cfg.Providers)+len(cfg.Fanout)
	var err error
	r.srv, err = server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(cfg.Dir, "jetstream"),
		SyncAlways: true, NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, err
	}
	r.srv.Start()
	if !r.srv.ReadyForConnections(15 * time.Second) {
		r.srv.Shutdown()
		return nil, errors.New("raw chain: nats-server did not start")
	}
	fail := func(err error) (*Raw, error) { r.Close(); return nil, fmt.Errorf("%s: %w", cfg.Name, err) }
	if r.db, err = bolt.Open(filepath.Join(cfg.Dir, "raw.db"), 0o600, nil); err != nil {
		return fail(err)
	}
	if err := r.db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte(rawStream)); return err }); err != nil {
		return fail(err)
	}
	if r.nc, err = nats.Connect(r.srv.ClientURL()); err != nil {
		return fail(err)
	}
	if r.cnc, err = nats.Connect(r.srv.ClientURL()); err != nil {
		return fail(err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return fail(err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: rawStream, Subjects: []string{rawStream + ".>"}, Storage: jetstream.FileStorage,
		Duplicates: time.Hour, AllowAtomicPublish: cfg.Batched,
	})
	if err != nil {
		return fail(err)
	}
	cjs, err := jetstream.New(r.cnc)
	if err != nil {
		return fail(err)
	}
	all := append(append([]string(nil), cfg.Providers...), cfg.Fanout...)
	for _, p := range all {
		cons, err := js.CreateOrUpdateConsumer(ctx, rawStream, jetstream.ConsumerConfig{
			Durable: p, FilterSubject: rawStream + "." + p, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 10 * time.Second, MaxDeliver: 10, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return fail(err)
		}
		if cons, err = cjs.Consumer(ctx, rawStream, cons.CachedInfo().Name); err != nil {
			return fail(err)
		}
		cc, err := Consume(cons, p, r.Arr)
		if err != nil {
			return fail(err)
		}
		r.consumed = append(r.consumed, cc)
	}
	r.value = make([]byte, 500) // the size of a dispatch
	r.wg.Go(r.commitLoop)
	if cfg.Batched {
		r.wg.Go(func() { r.batchLoop(ctx) })
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /file", func(w http.ResponseWriter, req *http.Request) {
		r.file(w, req, cfg, js)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	r.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.httpSrv.Serve(l) }()
	client := HTTPClient(64)
	base := "http://" + l.Addr().String() + "/file"
	r.File = func(ctx context.Context, fanout bool) (string, time.Time, error) {
		start := time.Now()
		url := base
		if fanout {
			url += "?fanout=1"
		}
		id, err := Post(ctx, client, url, "", `{"title":"raw","content":"a dispatch"}`)
		if err == nil {
			if perr := r.failed.Load(); perr != nil {
				err = *perr
			}
		}
		return id, start, err
	}
	return r, nil
}

// file is the raw chain's handler: store, 201, publish.
func (r *Raw) file(w http.ResponseWriter, req *http.Request, cfg RawConfig, js jetstream.JetStream) {
	if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := r.seq.Add(1)
	c := &rawCommit{key: binary.BigEndian.AppendUint64(nil, n), done: make(chan error, 1)}
	r.commits <- c
	if err := <-c.done; err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	id := "RAW" + strconv.FormatUint(n, 10)
	providers := cfg.Providers
	if req.URL.Query().Get("fanout") != "" {
		providers = append(append([]string(nil), cfg.Providers...), cfg.Fanout...)
	}
	msgs := make([]*nats.Msg, len(providers))
	for i, p := range providers {
		m := nats.NewMsg(rawStream + "." + p)
		m.Data = r.value
		m.Header.Set(jetstream.MsgIDHeader, id+"."+p)
		m.Header.Set(natsbus.HeaderBroadcastID, id)
		msgs[i] = m
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":%q}`, id)
	if cfg.Batched {
		r.queue <- &rawPublish{msgs: msgs}
		return
	}
	// One acknowledged publish per provider, all in flight together.
	go func() {
		futures := make([]jetstream.PubAckFuture, 0, len(msgs))
		for _, m := range msgs {
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				r.fail(err)
				return
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				r.fail(err)
			}
		}
	}()
}

func (r *Raw) fail(err error) { r.failed.CompareAndSwap(nil, &err) }

type rawCommit struct {
	key  []byte
	done chan error
}

// commitLoop stores filings, as many to one fsynced commit as are waiting.
func (r *Raw) commitLoop() {
	for c := range r.commits {
		batch := []*rawCommit{c}
	fill:
		for len(batch) < 256 {
			select {
			case c, ok := <-r.commits:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		err := r.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(rawStream))
			for _, c := range batch {
				if err := b.Put(c.key, r.value); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range batch {
			c.done <- err
		}
		// Let the answered handlers send their 201s before the next
		// commit, as Tocsin's writer does (boltstore's answer): without
		// it they wait on this goroutine's P behind the next fsync.
		runtime.Gosched()
	}
}

type rawPublish struct{ msgs []*nats.Msg }

// batchLoop publishes what filings queued, everything waiting at once as
// one atomic batch (a lone message directly), one batch at a time.
func (r *Raw) batchLoop(ctx context.Context) {
	js, err := jetstream.New(r.nc)
	if err != nil {
		r.fail(err)
		return
	}
	var batches int
	for p := range r.queue {
		msgs := p.msgs
	fill:
		for len(msgs) < natsbus.MaxAtomicBatch {
			select {
			case p, ok := <-r.queue:
				if !ok {
					break fill
				}
				if len(msgs)+len(p.msgs) > natsbus.MaxAtomicBatch {
					r.publish(ctx, js, msgs, &batches)
					msgs = nil
				}
				msgs = append(msgs, p.msgs...)
			default:
				break fill
			}
		}
		r.publish(ctx, js, msgs, &batches)
	}
}

func (r *Raw) publish(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg, batches *int) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	if len(msgs) == 1 {
		_, err = js.PublishMsg(ctx, msgs[0])
	} else if len(msgs) > 1 {
		*batches++
		_, err = natsbus.PublishAtomic(ctx, r.nc, "rawb-"+strconv.Itoa(*batches), msgs)
	}
	if err != nil {
		r.fail(err)
	}
}

// Close stops the chain.
func (r *Raw) Close() {
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.httpSrv.Shutdown(ctx)
		cancel()
		close(r.commits)
		close(r.queue)
		r.wg.Wait()
	}
	for _, cc := range r.consumed {
		cc.Stop()
	}
	for _, nc := range []*nats.Conn{r.nc, r.cnc} {
		if nc != nil {
			nc.Close()
		}
	}
	if r.db != nil {
		_ = r.db.Close()
	}
	r.srv.Shutdown()
}

// idOf reads the id of a 201's body, the first member of every chain's.
// It stops there: Tocsin's 201 is the whole broadcast, 1.6 KB that
// encoding/json took 21 µs to walk for the one field, and the load
// generator shares the machine with what it measures, so decoding the
// rest charged Tocsin's figure with the harness's own work.
func idOf(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("no id in %q: not an object", data)
	}
	var id string
	if k, err := dec.Token(); err != nil || k != "id" {
		return "", fmt.Errorf("no id in %q: its first member is not the id", data)
	}
	if err := dec.Decode(&id); err != nil || id == "" {
		return "", fmt.Errorf("no id in %q: %v", data, err)
	}
	return id, nil
}
