package auth

import (
	"github.com/tocsin-dev/tocsin/internal/atomicfile"

	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names of the key pair inside the keys directory.
const (
	privateKeyFile = "jwt.pem"
	publicKeyFile  = "jwt.pub.pem"
)

const (
	pemPrivateType = "PRIVATE KEY"
	pemPublicType  = "PUBLIC KEY"
)

// Keys is the Ed25519 key pair that signs and verifies tokens. Public must
// be the public half of Private; [GenerateKeys], [LoadOrCreateKeys] and
// [LoadPrivateKeyFile] guarantee that.
type Keys struct {
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
}

// GenerateKeys returns a fresh random key pair.
func GenerateKeys() (*Keys, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate key: %w", err)
	}
	return &Keys{Private: priv, Public: pub}, nil
}

// LoadOrCreateKeys loads the key pair kept in dir (normally <data>/keys),
// creating it on first use; created reports whether a new key was made.
//
// dir/jwt.pem holds the private key as a PKCS#8 "PRIVATE KEY" PEM block with
// mode 0600, and dir/jwt.pub.pem the public key as a PKIX "PUBLIC KEY" PEM
// block. dir is created with mode 0700 if missing (an existing directory's
// mode is left alone). If jwt.pem exists it is loaded; a jwt.pub.pem that
// does not match it is an error, and a missing one is written again. Files
// are written atomically (temporary file, fsync, rename), so a crash never
// leaves a truncated key behind.
func LoadOrCreateKeys(dir string) (*Keys, bool, error) {
	if dir == "" {
		return nil, false, errors.New("auth: empty key directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("auth: create key directory: %w", err)
	}
	privPath := filepath.Join(dir, privateKeyFile)
	pubPath := filepath.Join(dir, publicKeyFile)

	keys, err := LoadPrivateKeyFile(privPath)
	switch {
	case err == nil:
		if err := checkOrWritePublic(pubPath, keys.Public); err != nil {
			return nil, false, err
		}
		return keys, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}

	keys, err = GenerateKeys()
	if err != nil {
		return nil, false, err
	}
	privPEM, err := encodePrivate(keys.Private)
	if err != nil {
		return nil, false, err
	}
	pubPEM, err := encodePublic(keys.Public)
	if err != nil {
		return nil, false, err
	}
	// Private key first: if we crash before the public key is written, the
	// next call loads the private key and writes the public one.
	if err := atomicfile.Write(privPath, privPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := atomicfile.Write(pubPath, pubPEM, 0o644); err != nil {
		return nil, false, err
	}
	return keys, true, nil
}

// LoadPrivateKeyFile reads an Ed25519 private key stored as a PKCS#8
// "PRIVATE KEY" PEM block, e.g. one named by a flag or environment variable.
// A missing file yields an error wrapping fs.ErrNotExist.
func LoadPrivateKeyFile(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read private key: %w", err)
	}
	keys, err := parsePrivatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return keys, nil
}

func parsePrivatePEM(data []byte) (*Keys, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemPrivateType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemPrivateType)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want Ed25519", key)
	}
	return &Keys{Private: priv, Public: priv.Public().(ed25519.PublicKey)}, nil
}

func parsePublicPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemPublicType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemPublicType)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKIX public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want Ed25519", key)
	}
	return pub, nil
}

func encodePrivate(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateType, Bytes: der}), nil
}

func encodePublic(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicType, Bytes: der}), nil
}

// checkOrWritePublic verifies that the public key file at path holds pub,
// or writes it if the file does not exist.
func checkOrWritePublic(path string, pub ed25519.PublicKey) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pubPEM, err := encodePublic(pub)
		if err != nil {
			return err
		}
		return atomicfile.Write(path, pubPEM, 0o644)
	}
	if err != nil {
		return fmt.Errorf("auth: read public key: %w", err)
	}
	got, err := parsePublicPEM(data)
	if err != nil {
		return fmt.Errorf("auth: %s: %w", path, err)
	}
	if !bytes.Equal(got, pub) {
		return fmt.Errorf("auth: %s does not match the private key %s", path, privateKeyFile)
	}
	return nil
}
