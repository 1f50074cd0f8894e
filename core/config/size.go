package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a size setting such as template_max_image_size: a whole
// number of bytes, or one with a binary unit K, M, G or T (powers of 1024;
// "KiB", "MiB", ... and "B" are accepted too), case-insensitive: "64G",
// "512MiB", "1048576".
func ParseSize(s string) (int64, error) {
	t, mult := splitUnit(strings.ToUpper(strings.TrimSpace(s)))
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, or one with K, M, G or T (powers of 1024)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// splitUnit cuts a unit off t and returns the number part and the unit's
// multiplier.
func splitUnit(t string) (string, int64) {
	for i, u := range []string{"K", "M", "G", "T"} {
		for _, suf := range []string{u + "IB", u + "B", u} {
			if rest, ok := strings.CutSuffix(t, suf); ok && rest != "" {
				return rest, int64(1) << (10 * (i + 1))
			}
		}
	}
	if rest, ok := strings.CutSuffix(t, "B"); ok && rest != "" {
		return rest, 1
	}
	return t, 1
}
