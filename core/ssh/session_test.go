package ssh

import "testing"

// TestSessionsFor: a dropbear that may abort overlapping sessions gets one
// session per connection; others are capped only by their refusals.
func TestSessionsFor(t *testing.T) {
	tests := []struct {
		version string
		want    int
	}{
		{"SSH-2.0-dropbear_2022.83", 1},
		{"SSH-2.0-dropbear_2022.82", 1},
		{"SSH-2.0-dropbear_2024.85", 1},
		{"SSH-2.0-dropbear_2020.81", 1}, // old ones are not known to be safe
		{"SSH-2.0-dropbear", 1},         // version hidden (LOCAL_IDENT)
		{"SSH-2.0-dropbear_2024.86", 0},
		{"SSH-2.0-dropbear_2025.88", 0},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", 0},
		{"SSH-2.0-Go", 0},
	}
	for _, tc := range tests {
		if got := sessionsFor(tc.version); got != tc.want {
			t.Errorf("sessionsFor(%q) = %d, want %d", tc.version, got, tc.want)
		}
	}
}
