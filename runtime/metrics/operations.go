package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// Sources are the counters of the protections moat added after the
// traffic counters: connection limits and bans, rate limits, the failed
// login cache, overload handling and shadow plugins. Each is read at
// scrape time from counters their packages keep anyway, so that metrics
// add nothing to the paths that count. A nil function leaves its metrics
// out.
type Sources struct {
	Limits   func() broker.LimitStats
	Overload func() broker.OverloadStats
	// Authn returns the authentications the failed-login cache answered
	// and those that waited for an identical one (policy.Decider.AuthnStats).
	Authn  func() (negativeHits, coalesced int64)
	Shadow func() []policy.ShadowStats
}

// SetSources makes src part of every scrape.
func (m *Metrics) SetSources(src Sources) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = src
}

// BanAdded and BanRemoved count the bans an operator added or lifted (the
// admin API's /bans), which the broker does not count.
func (m *Metrics) BanAdded()   { m.bansAdded.Inc() }
func (m *Metrics) BanRemoved() { m.bansRemoved.Inc() }

// opsCollector exposes Sources.
type opsCollector struct{ m *Metrics }

var (
	descLimitRefused = prometheus.NewDesc("moat_limits_connections_refused_total",
		"Connections refused by a [limits] rule before any plugin was asked, by reason (max_connections, listener_max_connections, max_connections_per_ip, listener_connection_rate, connection_rate_per_ip, authn_failure_rate_per_ip: the address's failed logins used up its bucket, banned, max_client_id_length, max_topic_length, connect_timeout: no complete CONNECT within [limits] connect_timeout, the socket cut). Policy refusals are moat_connections_refused_total.", []string{"reason"}, nil)
	descBans = prometheus.NewDesc("moat_bans",
		"Bans in force now, by kind (client_id, username, ip) and source (operator, flapping).", []string{"kind", "source"}, nil)
	descFlapBans = prometheus.NewDesc("moat_flapping_bans_total",
		"Temporary bans added by flapping detection ([limits] flap_count).", nil, nil)
	descRateEvents = prometheus.NewDesc("moat_rate_limit_events_total",
		"Clients over [limits] message_rate or byte_rate, by action: slowed (reads paused, once per episode), disconnected (over the rate past rate_grace).", []string{"action"}, nil)
	descTopicLimit = prometheus.NewDesc("moat_limits_topic_disconnects_total",
		"Clients disconnected for a PUBLISH over max_topic_length or max_topic_levels.", nil, nil)
	descSubLimit = prometheus.NewDesc("moat_limits_subscribes_refused_total",
		"SUBSCRIBE packets with a filter refused by max_subscriptions_per_client or the topic limits.", nil, nil)
	descAuthnCached = prometheus.NewDesc("moat_authn_failure_cache_hits_total",
		"CONNECTs refused from the failed-login cache ([limits] authn_failure_ttl) without asking the authn plugins.", nil, nil)
	descAuthnCoalesced = prometheus.NewDesc("moat_authn_coalesced_total",
		"CONNECTs that waited for an identical authentication in progress and took its answer.", nil, nil)
	descOverloadDropped = prometheus.NewDesc("moat_overload_messages_dropped_total",
		"Deliveries dropped by the overload rule, by QoS (0, or 1_2 for QoS 1 and 2) and reason: evicted_oldest (QoS 0, queued, then evicted from the subscriber's full outbound queue to make room for a newer message), queue_full (QoS 0, refused: the subscriber's outbound queue full of QoS 1/2), stuck_subscriber (QoS 1/2, no room within slow_subscriber_timeout or an offline session's inflight store full).", []string{"qos", "reason"}, nil)
	descStuck = prometheus.NewDesc("moat_overload_slow_subscribers_total",
		"Episodes of a stuck subscriber (no room for a QoS 1/2 message within mqtt.slow_subscriber_timeout); a connected one is disconnected.", nil, nil)
	descShadowSampled = prometheus.NewDesc("moat_shadow_questions_total",
		"Questions sampled for a shadow plugin, by result: queued, dropped (its queue or payload budget full). Restarts from 0 when a reload puts a new version in force.", []string{"plugin", "result"}, nil)
	descShadowAnswers = prometheus.NewDesc("moat_shadow_answers_total",
		"Answers of a shadow plugin compared with the live verdict, by result: agreed, disagreed, skipped (not comparable), error (the call failed). Restarts from 0 when a reload puts a new version in force.", []string{"plugin", "result"}, nil)
)

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLimitRefused, descBans, descFlapBans, descRateEvents, descTopicLimit, descSubLimit,
		descAuthnCached, descAuthnCoalesced, descOverloadDropped, descStuck, descShadowSampled, descShadowAnswers} {
		ch <- d
	}
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := c.m.sources
	c.m.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if src.Limits != nil {
		s := src.Limits()
		for reason, n := range s.ConnectionsRefused {
			counter(descLimitRefused, n, reason)
		}
		for kind, n := range s.Bans {
			ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(n), kind, "operator")
		}
		for kind, n := range s.FlappingBansActive {
			ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(n), kind, "flapping")
		}
		counter(descFlapBans, s.FlappingBans)
		counter(descRateEvents, s.RateSlowed, "slowed")
		counter(descRateEvents, s.RateDisconnected, "disconnected")
		counter(descTopicLimit, s.TopicDisconnected)
		counter(descSubLimit, s.SubscribesRefused)
	}
	if src.Authn != nil {
		hits, coalesced := src.Authn()
		counter(descAuthnCached, uint64(hits))
		counter(descAuthnCoalesced, uint64(coalesced))
	}
	if src.Overload != nil {
		s := src.Overload()
		counter(descOverloadDropped, s.QoS0Evicted, "0", "evicted_oldest")
		counter(descOverloadDropped, s.QoS0Dropped, "0", "queue_full")
		counter(descOverloadDropped, s.StuckDropped, "1_2", "stuck_subscriber")
		counter(descStuck, s.StuckEpisodes)
	}
	if src.Shadow != nil {
		for _, s := range src.Shadow() {
			counter(descShadowSampled, s.Sampled, s.Name, "queued")
			counter(descShadowSampled, s.Dropped, s.Name, "dropped")
			counter(descShadowAnswers, s.Agreed, s.Name, "agreed")
			counter(descShadowAnswers, s.Disagreed, s.Name, "disagreed")
			counter(descShadowAnswers, s.Skipped, s.Name, "skipped")
			counter(descShadowAnswers, s.Errors, s.Name, "error")
		}
	}
}
