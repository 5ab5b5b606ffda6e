package broker

import (
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestRetainedOutlivesADay: with the default config a retained message the
// publisher gave no expiry is kept however old it is, as in Mosquitto
// (mochi's default dropped it after 24 h). The message is aged by hand and
// mochi's once-a-second expiry sweep given time to run.
func TestRetainedOutlivesADay(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	url := h.url("tcp", "tcp")
	pub := testutil.MustConnectV3(t, url, testutil.V3Options{ClientID: "old-pub"})
	pub.Publish(t, "old/news", 1, true, "kept")
	deadline := time.Now().Add(5 * time.Second)
	for {
		pk, ok := h.srv.Topics.Retained.Get("old/news")
		if ok {
			pk.Created = time.Now().Add(-25 * time.Hour).Unix()
			h.srv.Topics.RetainMessage(pk)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not retained")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // past one expiry sweep
	sub := testutil.MustConnectV3(t, url, testutil.V3Options{ClientID: "old-sub"})
	sub.Subscribe(t, "old/#", 1)
	sub.Inbox.Want(t, "old/news", "kept")
}
