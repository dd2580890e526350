package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// buildTocsin compiles the command once per test binary run.
var buildTocsin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tocsin-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tocsin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is tocsin running as a child process, so it can be killed -9.
type process struct {
	cmd  *exec.Cmd
	base string
}

func startProcess(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	bin, err := buildTocsin()
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string{}, args...), "--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	cmd := exec.Command(bin, all...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	found := listeningAddr(stdout)
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatal("tocsin exited before listening")
		}
		p.base = addr
	case <-time.After(60 * time.Second):
		t.Fatal("tocsin did not start")
	}
	return p
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// providerCreds reads one demo provider's NATS credentials.
func providerCreds(t *testing.T, dir, id string) (url, password string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "demo-providers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		URL      string `json:"url"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	return all[id].URL, all[id].Password
}

// drain pulls every dispatch waiting for a provider, acking each, and
// returns how often each broadcast id arrived.
func drain(t *testing.T, dir, provider string, want int) map[string]int {
	t.Helper()
	url, password := providerCreds(t, dir, provider)
	nc, err := nats.Connect(url, nats.UserInfo(provider, password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, "TOCSIN_DISPATCH", provider)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var d struct {
				BroadcastID string `json:"broadcast_id"`
			}
			if err := json.Unmarshal(m.Data(), &d); err != nil {
				t.Fatal(err)
			}
			seen[d.BroadcastID]++
			_ = m.Ack()
		}
		total += n
		if n == 0 && total >= want {
			break
		}
	}
	return seen
}

func TestKill9LosesNothingAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	dir := t.TempDir()
	p := startProcess(t, dir, "demo", "--no-simulators")
	tokens := demoTokens(t, dir)

	// File emergencies from several clients until the process is killed
	// under them; remember every one that got its 201.
	var mu sync.Mutex
	accepted := map[string]string{} // id -> content
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				content := fmt.Sprintf("【广东省气象局】演练 %d-%d", w, i)
				body := fmt.Sprintf(`{"title":"t","content":%q,"scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"blue"}}`, content)
				req, _ := http.NewRequest("POST", p.base+"/api/v1/broadcasts", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens["gd-met"])
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var out struct {
					ID string `json:"id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusCreated {
					mu.Lock()
					accepted[out.ID] = content
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill()
	close(stop)
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatal("nothing was accepted before the kill")
	}
	t.Logf("%d filings accepted before kill -9", len(accepted))

	p = startProcess(t, dir, "demo", "--no-simulators")
	for id, content := range accepted {
		got := call(t, "GET", p.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], "")
		if got.status != http.StatusOK || got.body["content"] != content {
			t.Fatalf("accepted %s lost after kill -9: %d %v", id, got.status, got.body)
		}
	}
	// Every accepted emergency reaches both Guangdong providers, and none
	// arrives twice under its own id once redeliveries are dropped.
	for _, provider := range []string{"cmcc", "cucc"} {
		seen := drain(t, dir, provider, len(accepted))
		for id := range accepted {
			if seen[id] == 0 {
				t.Errorf("%s never received accepted broadcast %s", provider, id)
			}
		}
	}
}

func TestScheduledReleaseSurvivesRestartOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	dir := t.TempDir()
	// Filed on Friday 2026-09-18: the earliest send date is 2026-10-09.
	p := startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-09-18T10:00:00+08:00")
	tokens := demoTokens(t, dir)
	filed := call(t, "POST", p.base+"/api/v1/broadcasts", tokens["gd-met"],
		`{"title":"防台风宣传","content":"【广东省气象局】台风季请关注预警信息。","scope":["440000"],"send_at":"2026-10-09T09:00:00+08:00"}`)
	if filed.status != http.StatusCreated {
		t.Fatalf("filing: %d %v", filed.status, filed.body)
	}
	id := filed.body["id"].(string)
	if got := call(t, "POST", p.base+"/api/v1/broadcasts/"+id+"/approve", tokens["gd-cab"], ""); got.status != http.StatusOK || got.body["status"] != "approved" {
		t.Fatalf("approve: %d %v", got.status, got.body)
	}
	p.kill()

	// Restart after the send time: the scheduler finds it and releases it.
	p = startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-10-09T09:00:05+08:00")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := call(t, "GET", p.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], "")
		if got.body["status"] == "dispatching" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not released after restart: %v", got.body["status"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.kill()
	// And once more: a second restart must not release it again.
	p = startProcess(t, dir, "demo", "--no-simulators", "--now", "2026-10-09T09:10:00+08:00")
	time.Sleep(2 * time.Second) // give a wrong second release time to happen
	for _, provider := range []string{"cmcc", "cucc"} {
		if n := drain(t, dir, provider, 1)[id]; n != 1 {
			t.Errorf("%s received %s %d times, want once", provider, id, n)
		}
	}
}

func TestAuditVerifyFindsAFlippedByte(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "demo", "--no-simulators")
	tokens := demoTokens(t, dir)
	var ids []string
	for _, content := range []string{"【广东省气象局】第一条", "【广东省气象局】第二条"} {
		got := call(t, "POST", s.base+"/api/v1/broadcasts", tokens["gd-met"],
			fmt.Sprintf(`{"title":"t","content":%q,"scope":["440100"],"emergency":{"type":"natural_disaster","event":"typhoon","level":"blue"}}`, content))
		if got.status != http.StatusCreated {
			t.Fatalf("filing: %d %v", got.status, got.body)
		}
		ids = append(ids, got.body["id"].(string))
	}
	s.stop()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("verify of an untouched store: %v", err)
	}
	if !strings.Contains(out.String(), "intact") {
		t.Fatalf("verify said %q", out.String())
	}

	db, err := os.ReadFile(filepath.Join(dir, "tocsin.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"第二条", `"action":"released"`} {
		t.Run(target, func(t *testing.T) {
			i := bytes.Index(db, []byte(target))
			if i < 0 {
				t.Fatalf("%q not found in the data file", target)
			}
			copyDir := t.TempDir()
			tampered := bytes.Clone(db)
			tampered[i+len(target)-1] ^= 0x01
			if err := os.WriteFile(filepath.Join(copyDir, "tocsin.db"), tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), []string{"audit", "verify", "--data", copyDir}, noEnv, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("verify passed a tampered store")
			}
			if !strings.Contains(err.Error(), "audit entry") && !strings.Contains(err.Error(), "record") {
				t.Fatalf("error does not name the entry: %v", err)
			}
			t.Logf("verify: %v", err)
		})
	}
	_ = ids
}
