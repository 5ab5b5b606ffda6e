package config

import (
	"strings"
	"testing"
)

func TestMetricsAndAuditKeys(t *testing.T) {
	head := "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1883\"\n"
	tests := []struct {
		name, body string
		want       string // "" means valid
		check      func(*testing.T, *Config)
	}{
		{name: "defaults", body: "", check: func(t *testing.T, c *Config) {
			if c.Metrics.Listen != "" || c.Log.AuditAllowSample != 0 {
				t.Errorf("metrics.listen %q, log.audit_allow_sample %v: want off and 0", c.Metrics.Listen, c.Log.AuditAllowSample)
			}
		}},
		{name: "set", body: "[metrics]\nlisten = \"127.0.0.1:9464\"\n[log]\naudit_allow_sample = 0.25\n", check: func(t *testing.T, c *Config) {
			if c.Metrics.Listen != "127.0.0.1:9464" || c.Log.AuditAllowSample != 0.25 {
				t.Errorf("got %q, %v", c.Metrics.Listen, c.Log.AuditAllowSample)
			}
		}},
		{name: "port 0", body: "[metrics]\nlisten = \"127.0.0.1:0\"\n"},
		{name: "no port", body: "[metrics]\nlisten = \"127.0.0.1\"\n", want: "t.toml:5: metrics.listen: \"127.0.0.1\": want host:port"},
		{name: "bad port", body: "[metrics]\nlisten = \"127.0.0.1:http\"\n", want: "t.toml:5: metrics.listen: \"127.0.0.1:http\": port \"http\""},
		{name: "listener's address", body: "[metrics]\nlisten = \"127.0.0.1:1883\"\n", want: "metrics.listen: \"127.0.0.1:1883\" is the address of listener[0]"},
		{name: "unknown key", body: "[metrics]\naddress = \"127.0.0.1:9464\"\n", want: "t.toml:5: metrics.address: unknown key"},
		{name: "rate above 1", body: "[log]\naudit_allow_sample = 1.5\n", want: "t.toml:5: log.audit_allow_sample: want a rate from 0.0"},
		{name: "negative rate", body: "[log]\naudit_allow_sample = -0.1\n", want: "log.audit_allow_sample: want a rate"},
		{name: "nan", body: "[log]\naudit_allow_sample = nan\n", want: "log.audit_allow_sample: want a rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tc.body), "t.toml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
