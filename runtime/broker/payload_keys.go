package broker

import (
	"context"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
)

// LoadRing builds the key ring of cfg's [[key]] and [keys] tables, reading
// every key through src (nil: the key files). It returns nil, nil when cfg
// names no key. Errors name the key id and its file, never key material.
func LoadRing(ctx context.Context, cfg *config.Config, src crypto.Source) (*crypto.Ring, error) {
	if len(cfg.Payload.Keys) == 0 {
		return nil, nil
	}
	specs := make([]crypto.KeySpec, len(cfg.Payload.Keys))
	for i, k := range cfg.Payload.Keys {
		specs[i] = crypto.KeySpec{ID: k.ID, File: k.File, Algorithm: k.Algorithm}
	}
	active := map[string]string{}
	if id := cfg.Payload.Active.AtRest; id != "" {
		active[crypto.PurposeAtRest] = id
	}
	if id := cfg.Payload.Active.Reencrypt; id != "" {
		active[crypto.PurposeReencrypt] = id
	}
	return crypto.NewRing(ctx, src, specs, active)
}
