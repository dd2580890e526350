package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes (the OWASP minimum: 19 MiB, 2 passes,
// 1 lane), stored in each hash so they can be raised later.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Bounds on parameters accepted from a stored hash, so a corrupt or hostile
// string cannot make VerifyPassword allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
)

var b64 = base64.RawStdEncoding // PHC strings use unpadded standard base64

// HashPassword hashes password with Argon2id and a 16-byte random salt and
// returns a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt base64>$<hash base64>
//
// An empty password is refused.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("auth: empty password")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches encoded, a PHC string made
// by [HashPassword] (the parameters are read from the string). A wrong
// password is (false, nil); a malformed or unsupported encoded string is
// (false, error). The comparison takes constant time.
func VerifyPassword(encoded, password string) (bool, error) {
	p, err := parseHash(encoded)
	if err != nil {
		return false, fmt.Errorf("auth: malformed password hash: %w", err)
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

type argonHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseHash(s string) (*argonHash, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("want $argon2id$v=..$m=..,t=..,p=..$salt$hash")
	}
	if parts[1] != "argon2id" {
		return nil, fmt.Errorf("unsupported algorithm %q", parts[1])
	}
	v, err := parseParam(parts[2], "v", argon2.Version)
	if err != nil {
		return nil, err
	}
	if v != argon2.Version {
		return nil, fmt.Errorf("unsupported version %d", v)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errors.New("want parameters m=..,t=..,p=..")
	}
	var h argonHash
	if h.memory, err = parseParam(params[0], "m", maxMemory); err != nil {
		return nil, err
	}
	if h.time, err = parseParam(params[1], "t", maxTime); err != nil {
		return nil, err
	}
	threads, err := parseParam(params[2], "p", 255)
	if err != nil {
		return nil, err
	}
	h.threads = uint8(threads)
	if h.time < 1 || h.threads < 1 {
		return nil, errors.New("t and p must be at least 1")
	}
	if h.memory < 8*uint32(h.threads) {
		return nil, errors.New("m must be at least 8*p")
	}
	if h.salt, err = decodeB64(parts[4], "salt", minSaltLen, maxSaltLen); err != nil {
		return nil, err
	}
	if h.key, err = decodeB64(parts[5], "hash", minKeyLen, maxKeyLen); err != nil {
		return nil, err
	}
	return &h, nil
}

// parseParam parses "name=<decimal>" with the value at most max.
func parseParam(s, name string, max uint32) (uint32, error) {
	val, ok := strings.CutPrefix(s, name+"=")
	if !ok {
		return 0, fmt.Errorf("want %s=..., got %q", name, s)
	}
	// ParseUint accepts only digits here (no sign, no spaces); also reject
	// leading zeros so each hash has one spelling.
	if len(val) > 1 && val[0] == '0' {
		return 0, fmt.Errorf("bad %s value %q", name, val)
	}
	n, err := strconv.ParseUint(val, 10, 32)
	if err != nil || n > uint64(max) {
		return 0, fmt.Errorf("bad %s value %q", name, val)
	}
	return uint32(n), nil
}

func decodeB64(s, name string, minLen, maxLen int) ([]byte, error) {
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad %s encoding: %w", name, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("%s is %d bytes, want %d..%d", name, len(b), minLen, maxLen)
	}
	return b, nil
}
