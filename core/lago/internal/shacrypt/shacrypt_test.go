package shacrypt

import (
	"errors"
	"strings"
	"testing"
)

// TestCryptVectors checks the test vectors of Drepper's specification
// (the ones glibc's crypt tests use).
func TestCryptVectors(t *testing.T) {
	for _, tc := range []struct{ setting, password, want string }{
		{"$6$saltstring", "Hello world!",
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"$6$rounds=5000$toolongsaltstring", "This is just a test",
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
		// openssl passwd -6 -salt saltstringsaltstring 'Hello world!'
		{"$6$saltstringsaltstring", "Hello world!",
			"$6$saltstringsaltst$e.3mR68CqZEpesEX1HlFZT6sEanSOjM/b5UoDyDo00a8syek2cJldMjrbtKP86.FJvzluVR7nc3DNzelAwTxj."},
	} {
		got, err := CryptSetting(tc.password, tc.setting)
		if err != nil {
			t.Errorf("CryptSetting(%q): %v", tc.setting, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CryptSetting(%q, %q)\n got %s\nwant %s", tc.password, tc.setting, got, tc.want)
		}
		// An existing hash is a setting for itself.
		if again, _ := CryptSetting(tc.password, got); again != got {
			t.Errorf("CryptSetting(pw, %q) = %q, want the same hash", got, again)
		}
	}
}

func TestHashIsSaltedAndVerifies(t *testing.T) {
	a, err := Hash("123456")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Hash("123456")
	if a == b {
		t.Errorf("two hashes of one password are equal (%s): the salt is not random", a)
	}
	fields := strings.Split(a, "$")
	if len(fields) != 4 || fields[1] != "6" || len(fields[2]) != MaxSaltLen || len(fields[3]) != 86 {
		t.Fatalf("hash %q is not $6$<16 salt>$<86 chars>", a)
	}
	if v, _ := CryptSetting("123456", a); v != a {
		t.Errorf("the hash does not verify: %s vs %s", v, a)
	}
	if v, _ := CryptSetting("1234567", a); v == a {
		t.Errorf("another password verifies against %s", a)
	}
}

func TestBadSalt(t *testing.T) {
	for _, s := range []string{"a$b", "a:b", "a\nb"} {
		if _, err := Crypt("x", s, DefaultRounds); !errors.Is(err, ErrBadSalt) {
			t.Errorf("Crypt with salt %q: err %v, want ErrBadSalt", s, err)
		}
	}
	if _, err := CryptSetting("x", "$1$abc"); err == nil {
		t.Error("CryptSetting accepted an MD5 setting")
	}
}
