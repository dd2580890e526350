package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys") // parents missing too
	k1, created, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("first call: created = false")
	}

	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{
		{dir, 0o700 | fs.ModeDir},
		{filepath.Join(dir, "jwt.pem"), 0o600},
		{filepath.Join(dir, "jwt.pub.pem"), 0o644},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s mode = %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}

	// The files are standard PKCS#8 / PKIX PEM.
	privPEM, err := os.ReadFile(filepath.Join(dir, "jwt.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(privPEM)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("jwt.pem is not a single PRIVATE KEY PEM block:\n%s", privPEM)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if priv, ok := key.(ed25519.PrivateKey); !ok || !priv.Equal(k1.Private) {
		t.Fatalf("jwt.pem holds %T, not the returned key", key)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, "jwt.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, rest = pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("jwt.pub.pem is not a single PUBLIC KEY PEM block:\n%s", pubPEM)
	}
	pkey, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := pkey.(ed25519.PublicKey); !ok || !pub.Equal(k1.Public) {
		t.Fatalf("jwt.pub.pem holds %T, not the returned key", pkey)
	}

	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want only the two key files", names)
	}

	// Second call loads the same key.
	k2, created, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second call: created = true")
	}
	if !k2.Private.Equal(k1.Private) || !k2.Public.Equal(k1.Public) {
		t.Fatal("second call returned a different key")
	}
	// And a token from one verifies with the other.
	tok, err := k1.Issue(validActor(), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Verifier(fixedNow(t0)).Verify(tok); err != nil {
		t.Fatal(err)
	}

	// LoadPrivateKeyFile reads the same key.
	k3, err := LoadPrivateKeyFile(filepath.Join(dir, "jwt.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !k3.Private.Equal(k1.Private) || !k3.Public.Equal(k1.Public) {
		t.Fatal("LoadPrivateKeyFile returned a different key")
	}
}

func TestLoadOrCreateKeysPublicFile(t *testing.T) {
	dir := t.TempDir()
	k1, _, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "jwt.pub.pem")

	// A missing public key file is written again.
	if err := os.Remove(pubPath); err != nil {
		t.Fatal(err)
	}
	k2, created, err := LoadOrCreateKeys(dir)
	if err != nil || created || !k2.Public.Equal(k1.Public) {
		t.Fatalf("after removing jwt.pub.pem: created=%v err=%v", created, err)
	}
	if _, err := os.Stat(pubPath); err != nil {
		t.Fatalf("jwt.pub.pem not rewritten: %v", err)
	}

	// A public key file for another key is an error.
	other := mustKeys(t)
	otherPEM, err := encodePublic(other.Public)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeys(dir); err == nil {
		t.Fatal("mismatched jwt.pub.pem accepted")
	}

	// So is a garbled one.
	if err := os.WriteFile(pubPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeys(dir); err == nil {
		t.Fatal("garbled jwt.pub.pem accepted")
	}
}

func TestLoadPrivateKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	k := mustKeys(t)
	pubPEM, err := encodePublic(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not PEM", []byte("hello")},
		{"wrong block type", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})},
		{"public key", pubPEM},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".pem")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadPrivateKeyFile(path); err == nil {
				t.Fatal("accepted")
			}
			// LoadOrCreateKeys must not overwrite a bad key file.
			kd := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.MkdirAll(kd, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(kd, "jwt.pem"), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadOrCreateKeys(kd); err == nil {
				t.Fatal("LoadOrCreateKeys accepted a bad jwt.pem")
			}
			got, err := os.ReadFile(filepath.Join(kd, "jwt.pem"))
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatal("LoadOrCreateKeys replaced a bad jwt.pem")
			}
		})
	}
	if _, err := LoadPrivateKeyFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, _, err := LoadOrCreateKeys(""); err == nil {
		t.Error("empty dir accepted")
	}
}
