package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	const listener = "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n"
	tests := []struct {
		name    string
		toml    string
		wantErr string // "" for success
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "set",
			toml: listener + "max_connections = 5\nconnection_rate = 10\n" +
				"[limits]\nmax_client_id_length = 0\nconnection_rate_per_ip = 2.5\nmessage_rate = 100\n" +
				"byte_rate = \"1MiB\"\nflap_count = 3\nflap_window = \"10s\"\nban_file = \"bans/x\"\n",
			check: func(t *testing.T, c *Config) {
				l := c.Limits
				if l.MaxClientIDLength != 0 || l.ConnectionBurstPerIP != 5 || l.MessageBurst != 200 ||
					l.ByteBurst != 2*MiB || l.FlapCount != 3 || l.FlapWindow.Duration != 10*time.Second {
					t.Errorf("limits = %+v", l)
				}
				if !strings.HasSuffix(l.BanFile, filepath.Join("bans", "x")) || !filepath.IsAbs(l.BanFile) {
					t.Errorf("ban_file = %q", l.BanFile)
				}
				if ln := c.Listeners[0]; ln.MaxConnections != 5 || ln.ConnectionBurst != 20 {
					t.Errorf("listener = %+v", ln)
				}
			},
		},
		{
			name: "authn failure rate",
			toml: listener + "[limits]\nauthn_failure_rate_per_ip = 0.5\n",
			check: func(t *testing.T, c *Config) {
				if l := c.Limits; l.AuthnFailureRatePerIP != 0.5 || l.AuthnFailureBurstPerIP != 1 {
					t.Errorf("authn failure rate %v burst %d, want 0.5 and 1", l.AuthnFailureRatePerIP, l.AuthnFailureBurstPerIP)
				}
			},
		},
		{
			name: "authn failure rate off",
			toml: listener + "[limits]\nauthn_failure_rate_per_ip = 0\n",
			check: func(t *testing.T, c *Config) {
				if l := c.Limits; l.AuthnFailureRatePerIP != 0 || l.AuthnFailureBurstPerIP != 0 {
					t.Errorf("authn failure rate %v burst %d, want off", l.AuthnFailureRatePerIP, l.AuthnFailureBurstPerIP)
				}
			},
		},
		{
			name: "ban file off",
			toml: listener + "[limits]\nban_file = \"off\"\n",
			check: func(t *testing.T, c *Config) {
				if c.BanPath() != "" {
					t.Errorf("BanPath = %q", c.BanPath())
				}
			},
		},
		{name: "negative", toml: listener + "[limits]\nmax_topic_levels = -1\n", wantErr: "limits.max_topic_levels: -1: want 0 (no limit) to 65535"},
		{name: "too long", toml: listener + "[limits]\nmax_client_id_length = 70000\n", wantErr: "limits.max_client_id_length"},
		{name: "timeout", toml: listener + "[limits]\nconnect_timeout = \"10ms\"\n", wantErr: "limits.connect_timeout: 10ms: want 1s to 5m"},
		{name: "rate", toml: listener + "[limits]\nmessage_rate = -1\n", wantErr: "limits.message_rate"},
		{name: "burst", toml: listener + "[limits]\nmessage_rate = 5\nmessage_burst = 0\n", wantErr: "limits.message_burst: 0: want at least 1"},
		{name: "byte burst", toml: listener + "[limits]\nbyte_rate = \"1KiB\"\nbyte_burst = \"1KiB\"\n", wantErr: "limits.byte_burst"},
		{name: "authn failure rate", toml: listener + "[limits]\nauthn_failure_rate_per_ip = -1\n", wantErr: "limits.authn_failure_rate_per_ip: -1: want 0 (off)"},
		{name: "authn failure burst", toml: listener + "[limits]\nauthn_failure_rate_per_ip = 1\nauthn_failure_burst_per_ip = 0\n", wantErr: "limits.authn_failure_burst_per_ip: 0: want at least 1"},
		{name: "listener rate", toml: listener + "connection_rate = -2\n", wantErr: "listener[0].connection_rate"},
		{name: "flap window", toml: listener + "[limits]\nflap_count = 2\nflap_window = \"0s\"\n", wantErr: "limits.flap_window"},
		{name: "unknown", toml: listener + "[limits]\nmax_clients = 1\n", wantErr: "limits.max_clients: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), filepath.Join(t.TempDir(), "moat.toml"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
