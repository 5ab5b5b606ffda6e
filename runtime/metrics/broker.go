package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-mqtt/moat/runtime/broker"
)

// brokerCollector turns a broker.Stats snapshot into metrics at scrape
// time: the broker counts with atomics of its own and knows nothing of
// Prometheus.
type brokerCollector struct{ m *Metrics }

var (
	descClients = prometheus.NewDesc("moat_clients_connected",
		"Connections established now, by listener and MQTT protocol version.", []string{"listener", "protocol"}, nil)
	descConnections = prometheus.NewDesc("moat_connections_total",
		"Connections established (CONNACK sent) since start, by listener and MQTT protocol version.", []string{"listener", "protocol"}, nil)
	descRefused = prometheus.NewDesc("moat_connections_refused_total",
		"CONNECTs refused by moat's policy hooks since start.", nil, nil)
	descMsgIn = prometheus.NewDesc("moat_messages_received_total",
		"PUBLISH packets read from clients, by QoS, whatever the policy decided.", []string{"qos"}, nil)
	descMsgOut = prometheus.NewDesc("moat_messages_sent_total",
		"PUBLISH packets written to subscribers, by QoS.", []string{"qos"}, nil)
	descBytesIn = prometheus.NewDesc("moat_message_payload_received_bytes_total",
		"Payload bytes of the PUBLISH packets read from clients, by QoS.", []string{"qos"}, nil)
	descBytesOut = prometheus.NewDesc("moat_message_payload_sent_bytes_total",
		"Payload bytes of the PUBLISH packets written to subscribers, by QoS.", []string{"qos"}, nil)
	descNetIn = prometheus.NewDesc("moat_network_received_bytes_total",
		"Bytes of every packet read from clients.", nil, nil)
	descNetOut = prometheus.NewDesc("moat_network_sent_bytes_total",
		"Bytes of every packet written to clients.", nil, nil)
	descDropped = prometheus.NewDesc("moat_messages_dropped_total",
		"Messages not delivered or not accepted, by reason (slow_subscriber, qos_expired, not_authorized, payload_denied, payload_invalid, payload_failed).", []string{"reason"}, nil)
	descRetained = prometheus.NewDesc("moat_retained_messages",
		"Retained messages of clients held now (not the broker's $SYS topics).", nil, nil)
	descSubs = prometheus.NewDesc("moat_subscriptions",
		"Subscriptions held now.", nil, nil)
)

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClients, descConnections, descRefused, descMsgIn, descMsgOut,
		descBytesIn, descBytesOut, descNetIn, descNetOut, descDropped, descRetained, descSubs} {
		ch <- d
	}
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	stats := c.m.broker
	c.m.mu.Unlock()
	if stats == nil {
		return
	}
	s := stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, l := range s.Listeners {
		for p, proto := range broker.Protocols {
			gauge(descClients, l.Current[p], l.Name, proto)
			counter(descConnections, l.Total[p], l.Name, proto)
		}
	}
	counter(descRefused, s.Refused)
	for q := range 3 {
		qos := strconv.Itoa(q)
		counter(descMsgIn, s.MessagesReceived[q], qos)
		counter(descMsgOut, s.MessagesSent[q], qos)
		counter(descBytesIn, s.BytesReceived[q], qos)
		counter(descBytesOut, s.BytesSent[q], qos)
	}
	counter(descNetIn, s.NetworkBytesReceived)
	counter(descNetOut, s.NetworkBytesSent)
	for reason, n := range s.Dropped {
		counter(descDropped, n, reason)
	}
	gauge(descRetained, s.Retained)
	gauge(descSubs, s.Subscriptions)
}
