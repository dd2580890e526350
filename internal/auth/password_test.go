package auth

import (
	"regexp"
	"strings"
	"testing"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerifyPassword(t *testing.T) {
	tests := []struct {
		name, password string
	}{
		{"ascii", "correct horse battery staple"},
		{"unicode", "密码-пароль-🔑"},
		{"long", strings.Repeat("abc", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := HashPassword(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !phcRE.MatchString(h) {
				t.Fatalf("hash %q is not the expected PHC form", h)
			}
			ok, err := VerifyPassword(h, tt.password)
			if err != nil || !ok {
				t.Fatalf("right password: ok=%v err=%v", ok, err)
			}
			for _, wrong := range []string{"", tt.password + "x", tt.password[:len(tt.password)-1]} {
				ok, err := VerifyPassword(h, wrong)
				if err != nil || ok {
					t.Fatalf("wrong password %q: ok=%v err=%v", wrong, ok, err)
				}
			}
			h2, err := HashPassword(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if h2 == h {
				t.Fatal("two hashes of one password are equal: salt not random")
			}
		})
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
}

func TestVerifyPasswordReferenceVectors(t *testing.T) {
	// Produced by the reference C implementation (libargon2,
	// argon2id_hash_encoded) for password "password" and salt
	// "somesaltsomesalt". The first uses parameters other than our
	// defaults, so VerifyPassword must read them from the string.
	tests := []struct{ name, encoded string }{
		{"m=64,t=1,p=1", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$s0pH2PxtsBd08+8ZO8n1lw"},
		{"defaults", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K13EBUiG7JV+9ZxztmHFTdb7J0WQsnj2V8bZaqyPptE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(tt.encoded, "password")
			if err != nil || !ok {
				t.Fatalf("right password: ok=%v err=%v", ok, err)
			}
			ok, err = VerifyPassword(tt.encoded, "Password")
			if err != nil || ok {
				t.Fatalf("wrong password: ok=%v err=%v", ok, err)
			}
			// Changing a parameter changes the result.
			ok, err = VerifyPassword(strings.Replace(tt.encoded, "t=", "t=3", 1), "password")
			if err != nil || ok {
				t.Fatalf("changed t: ok=%v err=%v", ok, err)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", alg, v, params, salt, hash
	with := func(i int, s string) string {
		p := append([]string(nil), parts...)
		p[i] = s
		return strings.Join(p, "$")
	}
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", "pw"},
		{"dollar only", "$"},
		{"too few fields", strings.Join(parts[:5], "$")},
		{"too many fields", good + "$x"},
		{"leading text", "x" + good},
		{"argon2i", with(1, "argon2i")},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"version 16", with(2, "v=16")},
		{"no version", with(2, "19")},
		{"version not a number", with(2, "v=x")},
		{"params missing one", with(3, "m=19456,t=2")},
		{"params extra", with(3, "m=19456,t=2,p=1,k=3")},
		{"params out of order", with(3, "t=2,m=19456,p=1")},
		{"m not a number", with(3, "m=lots,t=2,p=1")},
		{"m negative", with(3, "m=-1,t=2,p=1")},
		{"m with plus", with(3, "m=+19456,t=2,p=1")},
		{"m leading zero", with(3, "m=019456,t=2,p=1")},
		{"m empty", with(3, "m=,t=2,p=1")},
		{"m huge", with(3, "m=4294967295,t=2,p=1")},
		{"m overflow", with(3, "m=99999999999999999999,t=2,p=1")},
		{"m below 8p", with(3, "m=7,t=2,p=1")},
		{"t zero", with(3, "m=19456,t=0,p=1")},
		{"t huge", with(3, "m=19456,t=100000,p=1")},
		{"p zero", with(3, "m=19456,t=2,p=0")},
		{"p over 255", with(3, "m=19456,t=2,p=256")},
		{"spaces", with(3, "m=19456, t=2, p=1")},
		{"salt bad base64", with(4, "!!!!")},
		{"salt padded", with(4, parts[4]+"==")},
		{"salt empty", with(4, "")},
		{"salt too short", with(4, "YWJj")},
		{"hash bad base64", with(5, "@@@@")},
		{"hash empty", with(5, "")},
		{"hash too short", with(5, "YWJjZGVm")},
		{"hash too long", with(5, strings.Repeat("A", 200))},
		{"hash non-canonical trailing bits", with(5, parts[5][:len(parts[5])-1]+"B")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.encoded, "pw")
			if err == nil || ok {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want false, error", tt.encoded, ok, err)
			}
		})
	}
}
