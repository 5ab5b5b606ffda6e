package broker

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sysPublisher publishes the broker's $SYS topics under Mosquitto's names
// (mosquitto(8), "BROKER STATUS"), so that dashboards built for Mosquitto
// keep working, in place of mochi's own set: mochi reports its own version,
// names some topics differently ($SYS/broker/load/bytes/received is a total
// there, a moving average in Mosquitto), and its in-flight counter drifts
// (it went negative: mochi decrements it for messages it never counted,
// such as expired in-flight messages restored from the store). Values that
// can be computed from the broker's state (in-flight messages,
// subscriptions, retained messages, clients) are computed each time rather
// than counted.
//
// Each value is retained (subscribers get the latest at once, as in
// Mosquitto) and published to current subscribers through mochi's publish
// path, with the delivery authorized by the policy like any message. The
// retained copies are kept in memory only: they are recomputed at start.
type sysPublisher struct {
	srv     *mqtt.Server
	version string
	every   time.Duration
	// dropped reports the denied MQTT 3.1.1 publishes acknowledged and
	// dropped (policyhook_v3.go); connects the CONNECT packets read
	// (protocol.go).
	dropped  func() int64
	connects func() int64

	// client injects the messages: an inline client, which mochi lets
	// publish without an ACL check, and which is in no client list.
	client *mqtt.Client
	// injected counts the PUBLISH packets injected, which mochi counts as
	// received; they are subtracted from the received totals.
	injected atomic.Int64

	// Load averages, as Mosquitto computes them (see load), under mu.
	mu       sync.Mutex
	last     time.Time
	lastVals map[string]int64
	loads    map[string]float64
}

// sysEvery is how often $SYS is refreshed: Mosquitto's sys_interval default.
const sysEvery = 10 * time.Second

// sysLoadTopics are the counters Mosquitto reports as 1, 5 and 15 minute
// moving averages of their rate per minute, under $SYS/broker/load/<name>.
var sysLoadTopics = []string{
	"messages/received", "messages/sent",
	"publish/received", "publish/sent", "publish/dropped",
	"bytes/received", "bytes/sent",
	"connections",
}

func newSysPublisher(srv *mqtt.Server, version string, dropped, connects func() int64) *sysPublisher {
	return &sysPublisher{
		srv:      srv,
		version:  sysVersion(version),
		every:    sysEvery,
		dropped:  dropped,
		connects: connects,
		client:   srv.NewClient(nil, "local", "moat-$SYS", true),
		lastVals: make(map[string]int64),
		loads:    make(map[string]float64),
	}
}

// sysVersion is the text of $SYS/broker/version, worded as Mosquitto's
// ("mosquitto version 2.0.11").
func sysVersion(v string) string {
	if v == "" {
		v = "dev"
	}
	return "moat version " + v
}

// run publishes at once, then every p.every, until ctx is done.
func (p *sysPublisher) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	p.publish(time.Now())
	p.dropForeign()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.publish(now)
		}
	}
}

// values computes every $SYS topic's value at now.
func (p *sysPublisher) values(now time.Time) map[string]string {
	info := p.srv.Info.Clone()
	injected := p.injected.Load()

	var total, inflight, subs int64
	for _, cl := range p.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		total++
		inflight += int64(cl.State.Inflight.Len())
		subs += int64(cl.State.Subscriptions.Len())
	}
	connected := max(info.ClientsConnected, 0)
	counters := map[string]int64{
		"messages/received": info.PacketsReceived - injected,
		"messages/sent":     info.PacketsSent,
		"publish/received":  info.MessagesReceived - injected,
		"publish/sent":      info.MessagesSent,
		"publish/dropped":   info.MessagesDropped,
		"bytes/received":    info.BytesReceived,
		"bytes/sent":        info.BytesSent,
		"connections":       p.connects(),
	}

	i := strconv.FormatInt
	v := map[string]string{
		"$SYS/broker/version":                         p.version,
		"$SYS/broker/uptime":                          i(int64(now.Sub(time.Unix(info.Started, 0)).Seconds()), 10) + " seconds",
		"$SYS/broker/clients/connected":               i(connected, 10),
		"$SYS/broker/clients/active":                  i(connected, 10), // deprecated in Mosquitto, still graphed
		"$SYS/broker/clients/disconnected":            i(max(total-connected, 0), 10),
		"$SYS/broker/clients/inactive":                i(max(total-connected, 0), 10),
		"$SYS/broker/clients/total":                   i(total, 10),
		"$SYS/broker/clients/maximum":                 i(info.ClientsMaximum, 10),
		"$SYS/broker/messages/received":               i(counters["messages/received"], 10),
		"$SYS/broker/messages/sent":                   i(counters["messages/sent"], 10),
		"$SYS/broker/messages/inflight":               i(inflight, 10),
		"$SYS/broker/messages/stored":                 i(inflight+int64(p.srv.Topics.Retained.Len()), 10),
		"$SYS/broker/publish/messages/received":       i(counters["publish/received"], 10),
		"$SYS/broker/publish/messages/sent":           i(counters["publish/sent"], 10),
		"$SYS/broker/publish/messages/dropped":        i(counters["publish/dropped"], 10),
		"$SYS/broker/publish/messages/denied/dropped": i(p.dropped(), 10),
		"$SYS/broker/bytes/received":                  i(counters["bytes/received"], 10),
		"$SYS/broker/bytes/sent":                      i(counters["bytes/sent"], 10),
		"$SYS/broker/subscriptions/count":             i(subs, 10),
		"$SYS/broker/retained messages/count":         i(int64(p.srv.Topics.Retained.Len()), 10),
		"$SYS/broker/heap/current":                    i(info.MemoryAlloc, 10),
	}
	for name, val := range p.load(now, counters) {
		v["$SYS/broker/load/"+name] = strconv.FormatFloat(val, 'f', 2, 64)
	}
	return v
}

// load updates the moving averages with the counters at now and returns
// them by "<name>/<1min|5min|15min>". Mosquitto's formula (sys_tree.c,
// calc_load): the rate per minute since the last update, r, enters each
// average as avg = e·avg + (1-e)·r with e = exp(-dt/window).
func (p *sysPublisher) load(now time.Time, counters map[string]int64) map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]float64, 3*len(sysLoadTopics))
	dt := now.Sub(p.last).Seconds()
	first := p.last.IsZero()
	for _, name := range sysLoadTopics {
		cur := counters[name]
		rate := 0.0
		if !first && dt > 0 {
			rate = float64(cur-p.lastVals[name]) * 60 / dt
		}
		p.lastVals[name] = cur
		for _, w := range []struct {
			name string
			secs float64
		}{{"1min", 60}, {"5min", 300}, {"15min", 900}} {
			k := name + "/" + w.name
			if !first && dt > 0 {
				e := math.Exp(-dt / w.secs)
				p.loads[k] = e*p.loads[k] + (1-e)*rate
			}
			out[k] = p.loads[k]
		}
	}
	p.last = now
	return out
}

// dropForeign removes the retained $SYS topics that are not moat's: mochi
// publishes its own set once when it starts serving, under names some of
// which mean something else in Mosquitto.
func (p *sysPublisher) dropForeign() {
	ours := p.values(time.Now())
	for topic := range p.srv.Topics.Retained.GetAll() {
		if _, ok := ours[topic]; !ok && strings.HasPrefix(topic, mqtt.SysPrefix+"/") {
			p.srv.Topics.Retained.Delete(topic)
		}
	}
}

// publish retains and publishes every value.
func (p *sysPublisher) publish(now time.Time) {
	for topic, val := range p.values(now) {
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
			TopicName:   topic,
			Payload:     []byte(val),
			Created:     now.Unix(),
		}
		p.srv.Topics.RetainMessage(pk.Copy(false))
		// Delivered live without the retain flag, as MQTT wants for a
		// message published while subscribed, and so that mochi's
		// retain path (and the store) is not involved.
		pk.FixedHeader.Retain = false
		p.injected.Add(1)
		if err := p.srv.InjectPacket(p.client, pk); err != nil {
			p.srv.Log.Warn("$SYS publish failed", "topic", topic, "err", fmt.Sprint(err))
		}
	}
}
