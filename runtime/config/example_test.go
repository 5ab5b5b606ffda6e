package config_test

import (
	"fmt"

	"github.com/moat-mqtt/moat/runtime/config"
)

// Parse reports every problem at once, each with file, line and key path.
func ExampleParse() {
	doc := `
[[listener]]
type = "tcp"
address = "127.0.0.1:1883"

[[listener]]
type = "tls"
adress = "127.0.0.1:8883"

[mqtt]
maximum_qos = 3
`
	_, err := config.Parse([]byte(doc), "moat.toml")
	for _, p := range config.Problems(err) {
		fmt.Println(p)
	}
	// Output:
	// moat.toml:6: listener[1].address: required: host:port, such as "127.0.0.1:1883"
	// moat.toml:6: listener[1].cert_file: required for a tls listener
	// moat.toml:6: listener[1].key_file: required for a tls listener
	// moat.toml:8: listener[1].adress: unknown key
	// moat.toml:11: mqtt.maximum_qos: 3: want 0, 1 or 2
}

// A config's defaults are filled in: every field holds the value in force.
func ExampleParse_defaults() {
	c, err := config.Parse([]byte("[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1883\"\n"), "moat.toml")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Listeners[0].Name, c.MQTT.MaximumQoS, c.MQTT.MaximumPacketSize, c.Auth.Timeout, c.Persistence.Type)
	// Output: tcp-0 2 256KiB 1s none
}
