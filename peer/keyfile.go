package peer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFileName is the name of the identity file in a host's data directory.
// It holds the LibNaCLSK form (74 bytes), so py-ipv8 tools can read it.
const KeyFileName = "identity.key"

// LoadOrCreateKey reads the identity in dir, or creates one (mode 0600, in a
// directory of mode 0700) when there is none.
func LoadOrCreateKey(dir string) (*PrivateKey, error) {
	path := filepath.Join(dir, KeyFileName)
	k, err := LoadKeyFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if k, err = GenerateKey(nil); err != nil {
		return nil, err
	}
	if err := SaveKeyFile(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKeyFile reads an identity file. It refuses files that others may read.
func LoadKeyFile(path string) (*PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("peer: key file %s has mode %v; it must not be readable by others (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseLibNaCLSK(b)
	if err != nil {
		return nil, fmt.Errorf("peer: key file %s: %w", path, err)
	}
	return k, nil
}

// SaveKeyFile writes k to path with mode 0600, atomically.
func SaveKeyFile(path string, k *PrivateKey) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(k.MarshalLibNaCLSK()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
