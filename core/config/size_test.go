package config

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512B", want: 512},
		{in: "64G", want: 64 << 30},
		{in: "64GiB", want: 64 << 30},
		{in: " 64 gib ", want: 64 << 30},
		{in: "64GB", want: 64 << 30},
		{in: "1T", want: 1 << 40},
		{in: "500m", want: 500 << 20},
		{in: "8K", want: 8 << 10},
		{in: "", bad: true},
		{in: "G", bad: true},
		{in: "-1", bad: true},
		{in: "1.5G", bad: true},
		{in: "64X", bad: true},
		{in: "99999999999T", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}
