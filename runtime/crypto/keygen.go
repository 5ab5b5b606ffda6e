package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/moat-mqtt/moat/sdk/envelope"
)

// GenerateKeyFile writes a new random 32-byte key, base64-encoded, to path
// with mode 0600. It refuses to overwrite an existing file: losing a key
// makes every message sealed under it unreadable.
func GenerateKeyFile(path string) error {
	key := make([]byte, envelope.KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("crypto: keygen: %w", err)
	}
	defer clear(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("crypto: keygen: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := f.WriteString(enc); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("crypto: keygen: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("crypto: keygen: %s: %w", path, err)
	}
	return f.Close()
}
