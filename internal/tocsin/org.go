package tocsin

import "time"

// Organisation is a department, regulator, provider or the operator itself.
// SenderCode is the number or code its messages carry (Article 10).
type Organisation struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	NameZH       string `json:"name_zh,omitempty"`
	Role         Role   `json:"role"`
	Level        Level  `json:"level"`
	Jurisdiction string `json:"jurisdiction"`
	SenderCode   string `json:"sender_code,omitempty"`
	// Disabled organisations cannot sign in or use a token (401); their
	// records and broadcasts stay.
	Disabled  bool      `json:"disabled,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AgencyName is the sending agency as messages carry it: the official
// Chinese name, and the English name only for an organisation registered
// without one. Providers, CAP, Atom and the records all read it.
func (o *Organisation) AgencyName() string {
	if o.NameZH != "" {
		return o.NameZH
	}
	return o.Name
}

// Account is a person's web login; it acts as its organisation.
type Account struct {
	Username     string    `json:"username"`
	Org          string    `json:"org"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// IdempotencyRecord remembers the result of a filing made with an
// Idempotency-Key, so that a retry returns the first result.
type IdempotencyRecord struct {
	BroadcastID string    `json:"broadcast_id"`
	RequestHash string    `json:"request_hash"`
	At          time.Time `json:"at"`
}
