//go:build !unix

package discovery

// lockDir: without flock, Install and Remove are not serialised.
func lockDir(string) (func(), error) { return func() {}, nil }

// syncDir: folders cannot be synced here.
func syncDir(string) error { return nil }

func textBusy(error) bool { return false }
