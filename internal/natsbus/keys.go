package natsbus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/tocsin-dev/tocsin/internal/atomicfile"
)

// Keys are the coordinator's NATS identities in decentralised (JWT)
// authentication: the operator every server trusts, the system account
// through which account JWTs are pushed to the servers' resolvers, the
// coordinator's account (TOCSIN, which owns the streams), and the signing
// key of every provider account's users. They live as nkey seeds in one
// folder, each file 0600, created on first start.
type Keys struct {
	Operator       nkeys.KeyPair
	System         nkeys.KeyPair // an account key
	Coordinator    nkeys.KeyPair // an account key
	ProviderSigner nkeys.KeyPair // an account signing key, listed in every provider account
}

// Key files under the keys folder.
var keyFiles = []struct {
	name   string
	prefix nkeys.PrefixByte
}{
	{"operator.nk", nkeys.PrefixByteOperator},
	{"system.nk", nkeys.PrefixByteAccount},
	{"coordinator.nk", nkeys.PrefixByteAccount},
	{"provider-signer.nk", nkeys.PrefixByteAccount},
}

// LoadKeys reads the keys in dir, creating those that do not exist yet.
func LoadKeys(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats keys: %w", err)
	}
	kps := make([]nkeys.KeyPair, len(keyFiles))
	for i, f := range keyFiles {
		path := filepath.Join(dir, f.name)
		seed, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			kp, err := nkeys.CreatePair(f.prefix)
			if err != nil {
				return nil, fmt.Errorf("nats keys: %w", err)
			}
			if seed, err = kp.Seed(); err != nil {
				return nil, fmt.Errorf("nats keys: %w", err)
			}
			if err := atomicfile.Write(path, append(seed, '\n'), 0o600); err != nil {
				return nil, fmt.Errorf("nats keys: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("nats keys: %w", err)
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			return nil, fmt.Errorf("nats keys: %s: %w", path, err)
		}
		if pub, _ := kp.PublicKey(); !validPublicKey(f.prefix, pub) {
			return nil, fmt.Errorf("nats keys: %s is not a key of the right kind", path)
		}
		kps[i] = kp
	}
	return &Keys{Operator: kps[0], System: kps[1], Coordinator: kps[2], ProviderSigner: kps[3]}, nil
}

func validPublicKey(prefix nkeys.PrefixByte, pub string) bool {
	_, err := nkeys.Decode(prefix, []byte(pub))
	return err == nil
}

func publicKey(kp nkeys.KeyPair) string {
	pub, err := kp.PublicKey()
	if err != nil {
		panic(err) // a loaded key pair always has a public key
	}
	return pub
}

// OperatorKey is the operator's public key.
func (k *Keys) OperatorKey() string { return publicKey(k.Operator) }

// SystemAccount is the system account's public key.
func (k *Keys) SystemAccount() string { return publicKey(k.System) }

// CoordinatorAccountKey is the coordinator account's public key.
func (k *Keys) CoordinatorAccountKey() string { return publicKey(k.Coordinator) }

// OperatorJWT is the operator's self-signed JWT, naming the system account.
func (k *Keys) OperatorJWT() (string, error) {
	oc := jwt.NewOperatorClaims(publicKey(k.Operator))
	oc.Name = "TOCSIN_OPERATOR"
	oc.SystemAccount = k.SystemAccount()
	return encode(oc.Encode(k.Operator))
}

// SystemAccountJWT is the system account's JWT, signed by the operator.
func (k *Keys) SystemAccountJWT() (string, error) {
	ac := jwt.NewAccountClaims(k.SystemAccount())
	ac.Name = "SYS"
	return encode(ac.Encode(k.Operator))
}

// coordinatorExports are what the coordinator account offers providers.
// Every export needs a token: an account imports it only with an
// activation the coordinator signed for that account and one subject, so
// the wildcards below never open more than one provider's subjects to it,
// and the coordinator's JWT does not change when providers come and go.
func coordinatorExports() jwt.Exports {
	exp := func(subject string, stream bool) *jwt.Export {
		e := &jwt.Export{Name: subject, Subject: jwt.Subject(subject), Type: jwt.Service, TokenReq: true}
		if stream {
			e.ResponseType = jwt.ResponseTypeStream
		}
		return e
	}
	return jwt.Exports{
		exp("$JS.API.INFO", false),
		exp("$JS.API.CONSUMER.INFO."+DispatchStream+".*", false),
		exp("$JS.API.CONSUMER.MSG.NEXT."+DispatchStream+".*", true),
		exp("$JS.ACK."+DispatchStream+".*.>", false),
		exp(ReceiptPrefix+"*", false),
	}
}

// CoordinatorAccountJWT is the TOCSIN account's JWT, signed by the
// operator: JetStream without limits and the exports providers import.
func (k *Keys) CoordinatorAccountJWT() (string, error) {
	ac := jwt.NewAccountClaims(k.CoordinatorAccountKey())
	ac.Name = CoordinatorAccount
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	ac.Exports = coordinatorExports()
	return encode(ac.Encode(k.Operator))
}

// ProviderAccount is what the store keeps of a provider's NATS identity,
// enough to sign its account JWT again.
type ProviderAccount struct {
	ID      string           // the provider id
	Account string           // the account's public key
	Revoked map[string]int64 // user public keys revoked, with the unix time
}

// ProviderAccountJWT signs a provider's account JWT with the operator:
// exactly the imports of providerSubjects, each with its activation
// token, no exports, no JetStream of its own, lim's payload, connection
// and subscription limits, and the revoked users. A provider publishes
// receipts and pull requests, all small: a larger publish is refused by
// the server before it costs anything. Dispatches reach a provider from
// the coordinator's account, so its payload limit does not bound them.
func (k *Keys) ProviderAccountJWT(p ProviderAccount, lim ProviderLimits) (string, error) {
	lim = lim.orDefault()
	ac := jwt.NewAccountClaims(p.Account)
	ac.Name = ProviderAccountName(p.ID)
	ac.SigningKeys.Add(publicKey(k.ProviderSigner))
	ac.Limits.NatsLimits = jwt.NatsLimits{Subs: int64(lim.MaxSubscriptions), Data: jwt.NoLimit, Payload: int64(lim.MaxPayload)}
	ac.Limits.AccountLimits = jwt.AccountLimits{Imports: int64(len(providerSubjects(p.ID))), Exports: 0,
		WildcardExports: false, DisallowBearer: true, Conn: int64(lim.MaxConnections), LeafNodeConn: 0}
	coordinator := k.CoordinatorAccountKey()
	for _, subject := range providerSubjects(p.ID) {
		act := jwt.NewActivationClaims(p.Account)
		act.Name = subject
		act.ImportSubject = jwt.Subject(subject)
		act.ImportType = jwt.Service
		token, err := act.Encode(k.Coordinator)
		if err != nil {
			return "", fmt.Errorf("nats: activation for %s: %w", subject, err)
		}
		ac.Imports.Add(&jwt.Import{Name: subject, Subject: jwt.Subject(subject), Account: coordinator, Token: token, Type: jwt.Service})
	}
	for user, at := range p.Revoked {
		ac.RevokeAt(user, time.Unix(at, 0))
	}
	return encode(ac.Encode(k.Operator))
}

// UserCreds is a user of an account with its permissions, as a NATS
// credentials file.
type UserCreds struct {
	Key  string // the user's public key
	Text string // the .creds file
}

// ProviderUser issues a new user of a provider's account, signed by the
// provider signing key: it may publish only what its account imports and
// subscribe only to its inboxes, within lim.
func (k *Keys) ProviderUser(p ProviderAccount, lim ProviderLimits) (UserCreds, error) {
	lim = lim.orDefault()
	perms := jwt.Permissions{
		Pub: jwt.Permission{Allow: providerSubjects(p.ID)},
		Sub: jwt.Permission{Allow: jwt.StringList{"_INBOX.>"}},
	}
	limits := jwt.NatsLimits{Subs: int64(lim.MaxSubscriptions), Data: jwt.NoLimit, Payload: int64(lim.MaxPayload)}
	return k.user(k.ProviderSigner, p.Account, p.ID, perms, limits)
}

// CoordinatorUser issues a user of the coordinator's account, with no
// restriction.
func (k *Keys) CoordinatorUser() (UserCreds, error) {
	return k.user(k.Coordinator, "", CoordinatorUser, jwt.Permissions{}, jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit})
}

// SystemUser issues a user of the system account, through which the
// coordinator pushes account JWTs.
func (k *Keys) SystemUser() (UserCreds, error) {
	return k.user(k.System, "", "tocsin-system", jwt.Permissions{}, jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit})
}

// user issues a user JWT signed by signer, on behalf of account when
// signer is one of its signing keys.
func (k *Keys) user(signer nkeys.KeyPair, account, name string, perms jwt.Permissions, limits jwt.NatsLimits) (UserCreds, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return UserCreds{}, fmt.Errorf("nats: user key: %w", err)
	}
	uc := jwt.NewUserClaims(publicKey(kp))
	uc.Name = name
	uc.IssuerAccount = account
	uc.Permissions = perms
	uc.Limits.NatsLimits = limits
	token, err := uc.Encode(signer)
	if err != nil {
		return UserCreds{}, fmt.Errorf("nats: user %s: %w", name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return UserCreds{}, fmt.Errorf("nats: user %s: %w", name, err)
	}
	text, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		return UserCreds{}, fmt.Errorf("nats: user %s: %w", name, err)
	}
	return UserCreds{Key: uc.Subject, Text: string(text)}, nil
}

// NewProviderAccountKey makes the key of a new provider account. Only its
// public key is kept: users are signed with the provider signing key.
func NewProviderAccountKey() (string, error) {
	kp, err := nkeys.CreateAccount()
	if err != nil {
		return "", fmt.Errorf("nats: account key: %w", err)
	}
	return publicKey(kp), nil
}

func encode(s string, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("nats: sign JWT: %w", err)
	}
	return s, nil
}

// ParseCreds reads a .creds file's user JWT and public key, checking
// that its seed belongs to the JWT.
func ParseCreds(text string) (userJWT string, uc *jwt.UserClaims, err error) {
	userJWT, err = jwt.ParseDecoratedJWT([]byte(text))
	if err != nil {
		return "", nil, fmt.Errorf("creds: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey([]byte(text))
	if err != nil {
		return "", nil, fmt.Errorf("creds: %w", err)
	}
	if uc, err = jwt.DecodeUserClaims(userJWT); err != nil {
		return "", nil, fmt.Errorf("creds: %w", err)
	}
	if pub, _ := kp.PublicKey(); pub != uc.Subject {
		return "", nil, errors.New("creds: the seed is not the JWT's user")
	}
	return userJWT, uc, nil
}
