package mqtt

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestGetByListenerNoRecursiveRLock: GetByListener, called by
// closeListenerClients as a listener closes, read-locked the clients
// twice (once more through Len). A writer (Add, Delete) waiting between
// the two read locks blocks the second, so both wait forever: a broker
// closing a listener while clients came and went hung.
func TestGetByListenerNoRecursiveRLock(t *testing.T) {
	cls := NewClients()
	for i := 0; i < 8; i++ {
		cls.Add(&Client{ID: strconv.Itoa(i), Net: ClientConnection{Listener: "t1"}})
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // readers
		defer wg.Done()
		for i := 0; i < 20000; i++ {
			cls.GetByListener("t1")
		}
	}()
	go func() { // writers
		defer wg.Done()
		for i := 0; i < 20000; i++ {
			id := "w" + strconv.Itoa(i%4)
			cls.Add(&Client{ID: id, Net: ClientConnection{Listener: "t1"}})
			cls.Delete(id)
		}
	}()
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("GetByListener and Add/Delete deadlocked")
	}
}
