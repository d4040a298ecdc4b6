package limits

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor waits until f has waiting calls waiting.
func waitFor(t *testing.T, f *Fair, waiting int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, w := f.InFlight(); w == waiting {
			return
		}
	}
	_, w := f.InFlight()
	t.Fatalf("%d calls waiting, want %d", w, waiting)
}

// TestFairTakesTurns: with the gateway full, a tenant with ten calls
// waiting and one with a single call take places in turn: the single call
// gets the second place freed, not the eleventh.
func TestFairTakesTurns(t *testing.T) {
	f := NewFair(FairOptions{Capacity: 1, MaxWait: time.Minute})
	_, ok := f.Acquire(context.Background(), "other")
	if !ok {
		t.Fatal("the first call was refused")
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	enqueue := func(tenant string, waiting int) {
		wg.Go(func() {
			if _, ok := f.Acquire(context.Background(), tenant); !ok {
				t.Errorf("%s refused", tenant)
				return
			}
			mu.Lock()
			order = append(order, tenant)
			mu.Unlock()
			f.Release()
		})
		waitFor(t, f, waiting)
	}
	for i := range 10 {
		enqueue("noisy", i+1)
	}
	enqueue("quiet", 11)
	f.Release()
	wg.Wait()
	if len(order) != 11 || order[0] != "noisy" || order[1] != "quiet" {
		t.Errorf("places went to %q, want noisy then quiet, then the rest of noisy", order)
	}
	if h, w := f.InFlight(); h != 0 || w != 0 {
		t.Errorf("after all: %d holding, %d waiting", h, w)
	}
}

// TestFairRefuses: a tenant's queue past MaxQueue is refused at once, a
// wait past MaxWait or an ended context is refused and leaves the queue,
// and a place freed afterwards goes to the calls still waiting.
func TestFairRefuses(t *testing.T) {
	f := NewFair(FairOptions{Capacity: 1, MaxWait: 100 * time.Millisecond, MaxQueue: 2})
	f.Acquire(context.Background(), "a")
	done := make(chan bool, 2)
	for range 2 {
		go func() { _, ok := f.Acquire(context.Background(), "b"); done <- ok }()
	}
	waitFor(t, f, 2)
	if retry, ok := f.Acquire(context.Background(), "b"); ok || retry <= 0 {
		t.Errorf("a third waiting call of b: ok %v, retry after %v", ok, retry)
	}
	for range 2 {
		if <-done {
			t.Error("a call waited past MaxWait and was let through")
		}
	}
	waitFor(t, f, 0)

	ctx, cancel := context.WithCancel(context.Background())
	gave := make(chan bool)
	go func() { _, ok := f.Acquire(ctx, "c"); gave <- ok }()
	waitFor(t, f, 1)
	cancel()
	if <-gave {
		t.Error("a call whose context ended was let through")
	}
	f.Release()
	if h, w := f.InFlight(); h != 0 || w != 0 {
		t.Errorf("after all: %d holding, %d waiting", h, w)
	}
	// Through a Ticket: its Release frees the place, a second frees nothing.
	var ticket Ticket
	if r := f.Admit(context.Background(), "d", &ticket); r != nil {
		t.Fatalf("a call on an empty gateway: %v", r)
	}
	ticket.Release()
	ticket.Release()
	if h, _ := f.InFlight(); h != 0 {
		t.Errorf("%d holding after a ticket's release", h)
	}
	f.Acquire(context.Background(), "e")
	r := f.Admit(context.Background(), "f", &ticket)
	if r == nil || r.Limit != LimitSaturated || !r.First || !strings.Contains(r.Error(), "1 calls at once") {
		t.Errorf("a call past the gateway's capacity: %v", r)
	}
	if r := f.Admit(context.Background(), "f", &ticket); r == nil || r.First {
		t.Errorf("a second refusal within the minute: %+v, want not First", r)
	}
	var none *Fair
	if _, ok := none.Acquire(context.Background(), "x"); !ok || NewFair(FairOptions{}) != nil || none.Admit(context.Background(), "x", &ticket) != nil {
		t.Error("no capacity set: calls must pass")
	}
}
