package lago

import (
	"slices"
	"testing"
)

// Kernels sort by version, not by bytes: -100 is newer than -99.
func TestCompareVersionsOrdersKernels(t *testing.T) {
	got := []string{"/boot/vmlinuz-6.1.0-99-amd64", "/boot/vmlinuz-6.1.0-100-amd64", "/boot/vmlinuz-5.10.0-9-amd64", "/boot/vmlinuz-6.1.0-57-cloud-amd64"}
	slices.SortFunc(got, func(a, b string) int { return compareVersions(b, a) })
	want := []string{"/boot/vmlinuz-6.1.0-100-amd64", "/boot/vmlinuz-6.1.0-99-amd64", "/boot/vmlinuz-6.1.0-57-cloud-amd64", "/boot/vmlinuz-5.10.0-9-amd64"}
	if !slices.Equal(got, want) {
		t.Fatalf("newest first = %v, want %v", got, want)
	}
}
