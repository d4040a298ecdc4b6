package oauth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// TestScheduleOrder checks the queue against a plain map through random
// sets, moves and removals: entries come out earliest first, each once.
func TestScheduleOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var s schedule
	want := map[credKey]time.Time{}
	for range 20_000 {
		k := credKey{fmt.Sprintf("t%d", rng.IntN(500)), "github"}
		switch rng.IntN(4) {
		case 0:
			s.remove(k)
			delete(want, k)
		default:
			at := base.Add(time.Duration(rng.IntN(1_000_000)) * time.Millisecond)
			s.set(k, at, at.Add(time.Hour))
			want[k] = at
		}
	}
	if s.len() != len(want) {
		t.Fatalf("len = %d, want %d", s.len(), len(want))
	}
	var got []time.Time
	for {
		e, _ := s.popDue(base.Add(time.Hour))
		if e == nil {
			break
		}
		if !e.at.Equal(want[e.key]) {
			t.Errorf("%v due at %v, want %v", e.key, e.at, want[e.key])
		}
		delete(want, e.key)
		got = append(got, e.at)
	}
	if len(want) != 0 {
		t.Errorf("%d entries never came out", len(want))
	}
	if !slices.IsSortedFunc(got, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Error("entries not earliest first")
	}
}

func TestSchedulePopDueWaits(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var s schedule
	if e, wait := s.popDue(now); e != nil || wait != 0 {
		t.Errorf("empty: %v, %v", e, wait)
	}
	k := credKey{"tenant-a", "github"}
	s.set(k, now.Add(time.Minute), now.Add(time.Hour))
	if e, wait := s.popDue(now); e != nil || wait != time.Minute {
		t.Errorf("not yet due: %v, %v; want nil, 1m", e, wait)
	}
	e, _ := s.popDue(now.Add(time.Minute))
	if e == nil || !s.handedOut(e) || s.len() != 0 {
		t.Fatalf("due: %v, handed out %v, len %d", e, e != nil && s.handedOut(e), s.len())
	}
	// Set again while with a worker: back in the heap, no longer handed out.
	s.set(k, now.Add(2*time.Minute), now.Add(time.Hour))
	if s.handedOut(e) || s.len() != 1 {
		t.Errorf("set again: handed out %v, len %d", s.handedOut(e), s.len())
	}
}

type refresherFunc func(ctx context.Context, refreshToken string) (Token, error)

func (f refresherFunc) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	return f(ctx, refreshToken)
}

// TestScheduleHundredThousand holds 100,000 scheduled tokens with the
// scheduler running: a few hundred bytes each, no goroutine or timer per
// token, and rescheduling them all costs no memory.
func TestScheduleHundredThousand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRefresher(RefresherOptions{
			Providers: map[string]TokenRefresher{"github": refresherFunc(func(context.Context, string) (Token, error) {
				t.Error("nothing is due")
				return Token{}, nil
			})},
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()

		const n = 100_000
		tenants := make([]string, n)
		for i := range tenants {
			tenants[i] = fmt.Sprintf("tenant-%06d", i)
		}
		cred := vault.Credential{AccessToken: "a", RefreshToken: "r"}
		start := time.Now()
		goroutines := runtime.NumGoroutine()
		heap0 := heapAlloc()

		for i, tenant := range tenants {
			cred.ExpiresAt = start.Add(time.Hour + time.Duration(i)*time.Millisecond)
			r.Schedule(tenant, "github", cred)
		}
		heap1 := heapAlloc()
		perToken := (int64(heap1) - int64(heap0)) / n
		t.Logf("%d bytes per scheduled token", perToken)
		if perToken > 400 {
			t.Errorf("%d bytes per scheduled token, want at most 400", perToken)
		}
		if g := runtime.NumGoroutine(); g != goroutines {
			t.Errorf("%d goroutines with %d tokens scheduled, %d before", g, n, goroutines)
		}

		// Reschedule every token (a refresh each): the queue stays as big.
		for i, tenant := range tenants {
			cred.ExpiresAt = start.Add(2*time.Hour - time.Duration(i)*time.Millisecond)
			r.Schedule(tenant, "github", cred)
		}
		if grew := int64(heapAlloc()) - int64(heap1); grew > n*8 {
			t.Errorf("rescheduling %d tokens grew the heap by %d bytes", n, grew)
		}
		if got := r.QueueLen(); got != n {
			t.Errorf("QueueLen = %d, want %d", got, n)
		}

		time.Sleep(30 * time.Minute) // nothing is due yet
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		runtime.KeepAlive(tenants)
	})
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
