// Package shacrypt computes SHA-512 crypt hashes ("$6$salt$..."), the
// format of /etc/shadow on every current Linux distribution, so that lago
// can set a guest's root password by writing the hash itself: the password
// never leaves the lago process (no argv, no file), only its hash goes into
// the guest.
//
// The algorithm is Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
// (the one glibc's crypt(3) implements for the $6$ prefix).
package shacrypt

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// DefaultRounds is the specification's default; a hash made with it
	// carries no "rounds=" field.
	DefaultRounds = 5000
	// MinRounds and MaxRounds bound rounds as the specification does.
	MinRounds = 1000
	MaxRounds = 999999999
	// MaxSaltLen is the longest salt used; longer ones are cut.
	MaxSaltLen = 16
)

// itoa64 is crypt's base-64 alphabet.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrBadSalt is returned for a salt with characters outside crypt's
// alphabet ('$' or ':' would break /etc/shadow's fields).
var ErrBadSalt = errors.New("salt has a character outside [./0-9A-Za-z]")

// Hash returns the SHA-512 crypt hash of password with a new random
// 16-character salt and the default rounds.
func Hash(password string) (string, error) {
	salt := make([]byte, MaxSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	for i, b := range salt {
		salt[i] = itoa64[int(b)%len(itoa64)]
	}
	return Crypt(password, string(salt), DefaultRounds)
}

// Crypt returns "$6$[rounds=N$]salt$hash" for password and salt: the
// "rounds=" field is written when rounds is not DefaultRounds. Rounds
// outside [MinRounds, MaxRounds] are clamped, as the specification says; a
// salt longer than MaxSaltLen is cut.
func Crypt(password, salt string, rounds int) (string, error) {
	return crypt(password, salt, rounds, rounds != DefaultRounds)
}

// CryptSetting is crypt(3) for a "$6$[rounds=N$]salt[$...]" setting (an
// existing hash works too: its salt and rounds are reused).
func CryptSetting(password, setting string) (string, error) {
	rest, ok := strings.CutPrefix(setting, "$6$")
	if !ok {
		return "", fmt.Errorf("setting %q does not start with $6$", setting)
	}
	rounds, custom := DefaultRounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 32)
		if !found || err != nil {
			return "", fmt.Errorf("setting %q: bad rounds field", setting)
		}
		rounds, custom, rest = int(min(n, MaxRounds)), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	return crypt(password, salt, rounds, custom)
}

func crypt(password, salt string, rounds int, custom bool) (string, error) {
	if len(salt) > MaxSaltLen {
		salt = salt[:MaxSaltLen]
	}
	for i := 0; i < len(salt); i++ {
		if !validSaltChar(salt[i]) {
			return "", ErrBadSalt
		}
	}
	rounds = min(max(rounds, MinRounds), MaxRounds)
	pw, s := []byte(password), []byte(salt)

	// Digest B: password, salt, password.
	h := sha512.New()
	h.Write(pw)
	h.Write(s)
	h.Write(pw)
	b := h.Sum(nil)

	// Digest A.
	h.Reset()
	h.Write(pw)
	h.Write(s)
	for n := len(pw); n > 0; n -= 64 {
		h.Write(b[:min(n, 64)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(nil)

	// Digest DP and the byte sequence P.
	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	p := repeat(h.Sum(nil), len(pw))

	// Digest DS and the byte sequence S.
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	ss := repeat(h.Sum(nil), len(s))

	// The rounds.
	for r := range rounds {
		h.Reset()
		if r&1 != 0 {
			h.Write(p)
		} else {
			h.Write(a)
		}
		if r%3 != 0 {
			h.Write(ss)
		}
		if r%7 != 0 {
			h.Write(p)
		}
		if r&1 != 0 {
			h.Write(a)
		} else {
			h.Write(p)
		}
		a = h.Sum(a[:0])
	}

	out := []byte("$6$")
	if custom {
		out = append(out, "rounds="+strconv.Itoa(rounds)+"$"...)
	}
	out = append(out, salt...)
	out = append(out, '$')
	return string(encode(out, a)), nil
}

func validSaltChar(c byte) bool {
	return c == '.' || c == '/' || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}

// repeat returns the first n bytes of d repeated.
func repeat(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// order is the specification's permutation of the final digest's bytes,
// three at a time.
var order = [21][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
	{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
	{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
}

// encode appends the crypt base-64 form of the 64-byte digest d.
func encode(out, d []byte) []byte {
	b64 := func(w uint32, n int) {
		for range n {
			out = append(out, itoa64[w&0x3f])
			w >>= 6
		}
	}
	for _, g := range order {
		b64(uint32(d[g[0]])<<16|uint32(d[g[1]])<<8|uint32(d[g[2]]), 4)
	}
	b64(uint32(d[63]), 2)
	return out
}
