package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// adminClient calls the running server's API as admin. The server owns the
// store (bbolt allows one process) and the NATS configuration, so commands
// that change them go through it, with a CLI token: signed by the data
// folder's key, living two minutes, acting for the stored admin
// organisation --as (default "admin"). The server takes role and
// jurisdiction from that organisation, and refuses a CLI token that lives
// longer than five minutes or names an organisation that is not an admin.
type adminClient struct {
	server, data, keyFile, as *string
}

// cliTokenTTL is a CLI token's lifetime: one command's worth.
const cliTokenTTL = 2 * time.Minute

func newAdminClient(fs *flag.FlagSet, getenv func(string) string) *adminClient {
	return &adminClient{
		server:  fs.String("server", envOr(getenv, "TOCSIN_SERVER", "http://127.0.0.1:8080"), "base URL of the running tocsin"),
		data:    fs.String("data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder holding keys/jwt.pem"),
		keyFile: fs.String("jwt-key", envOr(getenv, "TOCSIN_JWT_KEY", ""), "Ed25519 private key (PKCS#8 PEM); default DATA/keys/jwt.pem"),
		as:      fs.String("as", envOr(getenv, "TOCSIN_AS", tocsin.OperatorOrg), "stored admin organisation to act for"),
	}
}

// rawBody is a request body sent as it is, not as JSON.
type rawBody struct {
	contentType string
	data        []byte
}

// do sends the request and copies a successful response body to out.
func (c *adminClient) do(ctx context.Context, method, path string, body any, out io.Writer) error {
	keys, err := loadKeys(*c.data, *c.keyFile)
	if err != nil {
		return err
	}
	id, err := tocsin.NewCredentialID()
	if err != nil {
		return err
	}
	// Role, level and jurisdiction are claimed for the token's shape only;
	// the server reads them from the stored organisation.
	token, err := keys.IssueKind(tocsin.CredentialCLI, id, tocsin.Actor{Subject: "tocsin-cli", Role: tocsin.RoleAdmin,
		Org: *c.as, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}, time.Now(), cliTokenTTL)
	if err != nil {
		return err
	}
	var reader io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case rawBody:
		reader, contentType = bytes.NewReader(b.data), b.contentType
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	url := strings.TrimRight(*c.server, "/") + "/api/v1" + path
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is tocsin serving at %s? %w", *c.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// doJSON is do with the JSON answer indented on out.
func (c *adminClient) doJSON(ctx context.Context, method, path string, body any, out io.Writer) error {
	var buf bytes.Buffer
	if err := c.do(ctx, method, path, body, &buf); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, buf.Bytes(), "", "  ") != nil {
		pretty = buf
	}
	_, err := fmt.Fprintln(out, strings.TrimSpace(pretty.String()))
	return err
}
