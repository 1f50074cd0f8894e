//go:build !unix

package prefix

// TightenSecret does nothing where file modes do not say who may read.
func TightenSecret(path string) (bool, error) { return false, nil }
