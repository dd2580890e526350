package tocsin

import "strings"

// Role is what an authenticated actor may do in the system.
type Role string

const (
	RoleAdmin      Role = "admin"
	RoleRegulator  Role = "regulator"
	RoleDepartment Role = "department"
	// RoleProvider identifies an SMS provider organisation. Providers speak
	// to Tocsin over NATS, never with a bearer token, so no JWT carries it.
	RoleProvider Role = "provider"
)

// Valid reports whether r is one of the roles a token may carry.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleRegulator, RoleDepartment:
		return true
	}
	return false
}

// Level is the administrative level of an organisation.
type Level string

const (
	LevelNational   Level = "national"
	LevelProvincial Level = "provincial"
	LevelPrefecture Level = "prefecture"
	LevelCounty     Level = "county"
)

// Valid reports whether l is a known level.
func (l Level) Valid() bool {
	switch l {
	case LevelNational, LevelProvincial, LevelPrefecture, LevelCounty:
		return true
	}
	return false
}

// National is the jurisdiction of a national-level organisation.
const National = "national"

// Actor is an authenticated caller: who they are and where they may act.
// Jurisdiction is National or a GB/T 2260 region code.
type Actor struct {
	Subject      string
	Role         Role
	Org          string
	Level        Level
	Jurisdiction string
}

// IsNational reports whether the actor's jurisdiction is the whole country.
func (a Actor) IsNational() bool { return a.Jurisdiction == National }

// String names the actor for logs and history entries.
func (a Actor) String() string {
	var b strings.Builder
	b.WriteString(string(a.Role))
	b.WriteByte(':')
	b.WriteString(a.Org)
	if a.Subject != "" && a.Subject != a.Org {
		b.WriteByte('/')
		b.WriteString(a.Subject)
	}
	return b.String()
}
