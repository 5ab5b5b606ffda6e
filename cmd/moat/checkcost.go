package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/config"
)

// passwordCostWarnings measures, once, the costliest line of every password
// file granted to an authn plugin (the passwd plugin's [plugin.config] file,
// "passwords" by default) and returns a warning for each whose check takes
// longer on this machine than the plugin's timeout: the plugin would refuse
// that user with no other sign. The plugin hashes with the host's native
// functions, so the native time measured here is what a CONNECT costs.
// Files that are not password files are skipped: the plugin reports those.
func passwordCostWarnings(cfg *config.Config) []string {
	var out []string
	for i, pl := range cfg.Plugins {
		if !pl.Decides(config.DecisionAuthn) || len(pl.Files) == 0 {
			continue
		}
		name := "passwords"
		var pc struct {
			File string `json:"file"`
		}
		if json.Unmarshal(pl.ConfigJSON, &pc) == nil && pc.File != "" {
			name = pc.File
		}
		path, ok := pl.Files[name]
		if !ok {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f, err := passwdfile.Parse(bytes.NewReader(data), path)
		if err != nil {
			continue
		}
		user, took := f.Costliest()
		if user == "" || took <= pl.Timeout.Duration {
			continue
		}
		where := filepath.Base(cfg.Path)
		if pl.Line > 0 {
			where = fmt.Sprintf("%s:%d", where, pl.Line)
		}
		out = append(out, fmt.Sprintf("%s: plugin[%d].files.%s: warning: %s: the line of user %q (%s) takes %v to check on this machine, "+
			"more than the plugin's timeout %v: that user cannot log in; raise plugin[%d].timeout or rehash with 'moat passwd' (default: $7$, 20000 iterations)",
			where, i, name, path, user, f.Describe(user), took.Round(time.Millisecond), pl.Timeout.Duration, i))
	}
	sort.Strings(out)
	return out
}

// printPasswordCostWarnings prints passwordCostWarnings on w.
func printPasswordCostWarnings(w io.Writer, cfg *config.Config) {
	for _, s := range passwordCostWarnings(cfg) {
		fmt.Fprintln(w, s)
	}
}
