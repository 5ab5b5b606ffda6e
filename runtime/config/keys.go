package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/BurntSushi/toml"
)

// Payload holds what the host needs for the payload policy (issue 5): the
// key ring, from `[[key]]` entries, the active key per purpose, from
// `[keys]`, and the host's own settings, from `[payload]`:
//
//	[[key]]
//	id = "k1"
//	file = "keys/k1.key"          # 32 raw bytes or their base64, mode 0600
//	algorithm = "aes-256-gcm"     # or "chacha20-poly1305"
//
//	[keys]
//	at_rest = "k1"                # seals what the broker stores
//	reencrypt = "k1"              # default key of re-encrypted deliveries
//
//	[payload]
//	require_e2e_disconnect = false
//
// Which payloads are encrypted, and how, is the business of the payload
// plugins; these tables only say which keys exist. Key material never
// passes through this package: Validate looks at the key files' metadata
// (existence, permissions, size) and runtime/crypto reads them.
type Payload struct {
	// Keys is the key ring, in file order. Paths are absolute after Parse.
	Keys []Key
	// Active names the key new envelopes are sealed under, per purpose.
	Active ActiveKeys
	// RequireE2EDisconnect disconnects a client whose publish is refused
	// for not being a valid envelope (require-e2e, reencrypt) when the
	// refusal cannot be told in an acknowledgement: any MQTT 3.1.1 publish
	// and an MQTT 5 publish at QoS 0. Default false: the message is dropped
	// and counted.
	RequireE2EDisconnect bool
}

// Key is one `[[key]]` entry.
type Key struct {
	// ID names the key in envelopes and in policy decisions; required,
	// unique, 1 to 255 bytes.
	ID string `toml:"id"`
	// File holds the key: 32 raw bytes or their standard base64 encoding.
	// It must not be readable or writable by group or others (`moat keygen`
	// writes such a file). Required; relative to the config's directory.
	File string `toml:"file"`
	// Algorithm is "aes-256-gcm" (default) or "chacha20-poly1305".
	Algorithm string `toml:"algorithm"`
}

// ActiveKeys is the `[keys]` table: a key id per purpose, each naming a
// `[[key]]` entry. Older keys stay in the ring to open what they sealed.
type ActiveKeys struct {
	// AtRest seals payloads the broker stores: at-rest messages and the
	// stored form of re-encrypted ones. Needed by both modes.
	AtRest string `toml:"at_rest"`
	// Reencrypt seals a re-encrypted message for a subscriber when the
	// policy names no key for it.
	Reencrypt string `toml:"reencrypt"`
}

// Key algorithms as written in moat.toml.
const (
	AlgorithmAES256GCM        = "aes-256-gcm"
	AlgorithmChaCha20Poly1305 = "chacha20-poly1305"
)

// maxKeyID is the longest key id an envelope can carry.
const maxKeyID = 255

// rawPayload is the first decoding pass of the three tables; it is
// embedded in rawFile, whose fields the library flattens.
type rawPayload struct {
	Key     []toml.Primitive `toml:"key"`
	Keys    toml.Primitive   `toml:"keys"`
	Payload toml.Primitive   `toml:"payload"`
}

// payloadSection is the `[payload]` table.
type payloadSection struct {
	RequireE2EDisconnect bool `toml:"require_e2e_disconnect"`
}

// decodePayload decodes `[[key]]`, `[keys]` and `[payload]` into c.Payload,
// fills in defaults and makes key file paths absolute (relative to the
// directory of path, as resolve does for every other path).
func (c *Config) decodePayload(md *toml.MetaData, raw *rawPayload, path string, p *problems) {
	for i, prim := range raw.Key {
		key := "key[" + strconv.Itoa(i) + "]"
		var k Key
		if err := md.PrimitiveDecode(prim, &k); err != nil {
			p.decodeErr(err, key)
			continue
		}
		if k.Algorithm == "" {
			k.Algorithm = AlgorithmAES256GCM
		}
		c.Payload.Keys = append(c.Payload.Keys, k)
	}
	if md.IsDefined("keys") {
		if err := md.PrimitiveDecode(raw.Keys, &c.Payload.Active); err != nil {
			p.decodeErr(err, "keys")
		}
	}
	if md.IsDefined("payload") {
		var s payloadSection
		if err := md.PrimitiveDecode(raw.Payload, &s); err != nil {
			p.decodeErr(err, "payload")
		}
		c.Payload.RequireE2EDisconnect = s.RequireE2EDisconnect
	}

	dir := "."
	if path != "" {
		dir = filepath.Dir(path)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for i := range c.Payload.Keys {
		k := &c.Payload.Keys[i]
		if k.File == "" || filepath.IsAbs(k.File) {
			continue
		}
		r := filepath.Join(dir, k.File)
		if c.written != nil {
			c.written[r] = k.File
		}
		k.File = r
	}
}

// validatePayload checks the key ring's entries and key files. Only file
// metadata is read: the key's bytes are runtime/crypto's business, so that
// `moat check` never holds key material either.
func (c *Config) validatePayload(p *problems) {
	ids := map[string]int{}
	for i := range c.Payload.Keys {
		k := &c.Payload.Keys[i]
		key := "key[" + strconv.Itoa(i) + "]"
		switch j, dup := ids[k.ID]; {
		case k.ID == "":
			p.add(key+".id", errors.New("required: the key id that envelopes and policies name"))
		case len(k.ID) > maxKeyID:
			p.add(key+".id", fmt.Errorf("%d bytes: want at most %d", len(k.ID), maxKeyID))
		case dup:
			p.add(key+".id", fmt.Errorf("%q is already the id of key[%d]", k.ID, j))
		default:
			ids[k.ID] = i
		}
		if err := oneOf(k.Algorithm, AlgorithmAES256GCM, AlgorithmChaCha20Poly1305); err != nil {
			p.add(key+".algorithm", err)
		}
		if k.File == "" {
			p.add(key+".file", errors.New("required: a file holding 32 raw bytes or their base64 (moat keygen writes one)"))
		} else if err := c.keyFile(k.File); err != nil {
			p.add(key+".file", err)
		}
	}
	active := func(field, id string) {
		if id == "" {
			return
		}
		if _, ok := ids[id]; !ok {
			p.add("keys."+field, fmt.Errorf("%q: no [[key]] has this id", id))
		}
	}
	active("at_rest", c.Payload.Active.AtRest)
	active("reencrypt", c.Payload.Active.Reencrypt)
}

// keyFile checks what can be checked of a key file without reading it: a
// regular file, private to its owner, of a size a key can have (32 raw
// bytes, or 44 base64 characters and some white space).
func (c *Config) keyFile(path string) error {
	if err := c.regularFile(path); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return c.fileErr(err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s: mode %#o lets group or others access the key; chmod 600 it", c.shown(path), perm)
	}
	if n := st.Size(); n != 32 && (n < 44 || n > 64) {
		return fmt.Errorf("%s: %d bytes: want 32 raw bytes or their base64 encoding", c.shown(path), n)
	}
	return nil
}
