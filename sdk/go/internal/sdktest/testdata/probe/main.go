// Command probe is a test module built with the SDK: its handlers echo
// every request field back through results and setters, so that the tests
// in sdktest see what the SDK decoded inside wasm, and it exercises every
// result the SDK can produce.
package main

import (
	"encoding/hex"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"time"
	_ "unsafe" // for go:linkname

	moat "github.com/moat-mqtt/moat/sdk/go"
)

func init() {
	moat.HandleConfig(configure)
	moat.HandleAuthn(authenticate)
	moat.HandleAuthz(authorize)
	moat.HandlePayload(payload)
}

// main must never run in a c-shared module; the tests check that this
// line is never logged.
func main() { moat.Log(moat.LevelError, "main ran") }

var (
	configured string
	sink       []byte
	// kept holds request data across calls, as a cache would.
	kept = map[string]moat.Attributes{}
)

func configure(cfg []byte) error {
	if strings.Contains(string(cfg), "refuse") {
		return errors.New(`probe: config: unknown key "refuse"`)
	}
	configured = string(cfg)
	return nil
}

func authenticate(r *moat.AuthnRequest) moat.AuthnResult {
	switch r.Username {
	case "continue":
		return moat.Continue([]byte("server:"+string(r.AuthData)), []byte("state:"+strconv.Itoa(int(r.Round))))
	case "deny":
		return moat.AuthnResult{Result: moat.Deny(moat.ReasonBanned, "banned")}
	case "panic":
		panic("probe: asked to panic")
	case "many":
		res := moat.AuthnResult{Result: moat.Allow()}
		for i := range 65 {
			res.Attributes = append(res.Attributes, moat.Attribute{Key: "k" + strconv.Itoa(i), Value: "v"})
		}
		return res
	case "clock":
		var rnd [70000]byte // more than one random host call
		moat.Random(rnd[:])
		zeros := 0
		for _, c := range rnd[65536:] {
			if c == 0 {
				zeros++
			}
		}
		return moat.AuthnResult{Result: moat.Allow(), Attributes: moat.Attributes{
			{Key: "now", Value: strconv.FormatInt(moat.Now().UnixNano(), 10)},
			{Key: "tail_zeros", Value: strconv.Itoa(zeros)},
		}}
	case "garbage":
		// Enough garbage to start a collection cycle; the SDK must let it
		// finish before the call returns (probe_gc_marking).
		for range 40000 {
			sink = make([]byte, 256)
		}
		return moat.AuthnResult{Result: moat.Ignore()}
	case "log":
		moat.Log(moat.LevelWarn, "probe: warn line")
		moat.Infof("probe: %d info", 42)
		println("probe: to stderr")
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	var a moat.Attributes
	add := func(k, v string) { a = append(a, moat.Attribute{Key: k, Value: v}) }
	add("client_id", r.ClientID)
	add("username", r.Username)
	add("password", string(r.Password))
	add("password_nil", strconv.FormatBool(r.Password == nil))
	add("remote_addr", r.RemoteAddr)
	add("listener", r.Listener)
	add("protocol", strconv.Itoa(int(r.Protocol)))
	if r.Cert != nil {
		add("cert_cn", r.Cert.CommonName)
		add("cert_sans", strings.Join(r.Cert.SANs, ","))
		add("cert_sha256", hex.EncodeToString(r.Cert.SHA256[:]))
	}
	for _, p := range r.UserProperties {
		add("prop:"+p.Key, p.Value)
	}
	add("auth_method", r.AuthMethod)
	add("auth_data", string(r.AuthData))
	add("auth_state", string(r.AuthState))
	add("auth_state_nil", strconv.FormatBool(r.AuthState == nil))
	add("round", strconv.Itoa(int(r.Round)))
	add("configured", configured)
	return moat.AuthnResult{
		Result:     moat.Allow(),
		Superuser:  r.Username == "root",
		Attributes: a,
		Expiry:     time.Unix(1700000000, 123),
		AuthData:   []byte("connack-data"),
	}
}

func authorize(r *moat.AuthzRequest) moat.Result {
	switch {
	case r.Topic == "allow":
		return moat.Allow()
	case r.Topic == "ignore":
		return moat.Ignore()
	case r.Topic == "panic":
		var m map[string]*int
		return moat.Deny(0, strconv.Itoa(*m["x"]))
	case r.Topic == "zero":
		return moat.Result{}
	case strings.HasPrefix(r.Topic, "keep:"):
		kept[r.Topic] = r.Attributes // a map key and a list, kept as is
		return moat.Ignore()
	case r.Topic == "recall":
		var b strings.Builder
		for k, attrs := range kept {
			b.WriteString(k)
			for _, a := range attrs {
				b.WriteString(" " + a.Key + "=" + a.Value)
			}
		}
		return moat.Deny(moat.ReasonNotAuthorized, b.String())
	}
	var b strings.Builder
	field := func(k, v string) { b.WriteString(k + "=" + v + " ") }
	field("action", r.Action.String())
	field("topic", r.Topic)
	field("qos", strconv.Itoa(int(r.QoS)))
	field("retain", strconv.FormatBool(r.Retain))
	field("share", r.ShareGroup)
	field("client", r.ClientID)
	field("user", r.Username)
	field("superuser", strconv.FormatBool(r.Superuser))
	field("protocol", strconv.Itoa(int(r.Protocol)))
	for _, a := range r.Attributes {
		field("attr:"+a.Key, a.Value)
	}
	return moat.Deny(moat.ReasonQuotaExceeded, strings.TrimSpace(b.String()))
}

func payload(r *moat.PayloadRequest) moat.PayloadResult {
	p, err := r.Payload()
	if err != nil {
		return moat.PayloadResult{Result: moat.Deny(moat.ReasonUnspecified, err.Error())}
	}
	msg := "payload=" + string(p) + " size=" + strconv.Itoa(int(r.PayloadSize)) + " ct=" + r.ContentType +
		" env=" + r.EnvelopeKeyID + " mode=" + strconv.Itoa(int(r.PublishedMode)) + " action=" + r.Action.String()
	for _, p := range r.UserProperties {
		msg += " prop:" + p.Key + "=" + p.Value
	}
	if r.Action == moat.ActionDeliver {
		return moat.PayloadResult{Result: moat.Deny(moat.ReasonNotAuthorized, msg)}
	}
	return moat.PayloadResult{Result: moat.Allow(), Mode: moat.ModeAtRest, KeyID: "key-" + r.Topic}
}

// probe_noop is the floor: a Go export that does nothing, for comparing
// the cost of an SDK call.
//
//go:wasmexport probe_noop
func probeNoop(n int32) int32 { return n }

// probe_mallocs counts the guest's heap allocations so far, so that a
// benchmark can report allocations inside wasm, which the host's
// b.ReportAllocs does not see.
//
//go:wasmexport probe_mallocs
func probeMallocs() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Mallocs)
}

//go:linkname writeBarrier runtime.writeBarrier
var writeBarrier struct {
	enabled bool
	pad     [3]byte
	alignme uint64
}

// probe_gc_marking reports whether a garbage collection cycle is marking
// (the write barrier is on).
//
//go:wasmexport probe_gc_marking
func probeGCMarking() int32 {
	if writeBarrier.enabled {
		return 1
	}
	return 0
}
