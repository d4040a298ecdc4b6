package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// heard records what a node's OnChange was told, and when.
type heard struct {
	mu      sync.Mutex
	changes []Change
	at      []time.Time
}

func (h *heard) onChange(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, c)
	h.at = append(h.at, time.Now())
}

func (h *heard) snapshot() ([]Change, []time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.changes), slices.Clone(h.at)
}

// startNode starts a node on loopback that joins peers; its log goes to
// the test's.
func startNode(t *testing.T, name string, key []byte, peers ...string) (*Node, *heard) {
	t.Helper()
	return startNodeAt(t, name, "127.0.0.1:0", key, peers...)
}

func startNodeAt(t *testing.T, name, bind string, key []byte, peers ...string) (*Node, *heard) {
	t.Helper()
	h := new(heard)
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // after Close: memberlist's goroutines may log a little after it
	n, err := New(Options{
		Bind: bind, Peers: peers, Secret: key, Name: name,
		RejoinInterval: 200 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnChange:       h.onChange,
	})
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n, h
}

// testWriter logs to the test until it ends.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool // guarded by mu
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// threeNodes starts a, b and c, b and c joining a, and waits for all three
// to see each other.
func threeNodes(t *testing.T) ([]*Node, []*heard) {
	t.Helper()
	a, ha := startNode(t, "a", testKey)
	b, hb := startNode(t, "b", testKey, a.Addr())
	c, hc := startNode(t, "c", testKey, a.Addr())
	nodes := []*Node{a, b, c}
	waitFor(t, 5*time.Second, "three members on every node", func() bool {
		return a.Members() == 3 && b.Members() == 3 && c.Members() == 3
	})
	return nodes, []*heard{ha, hb, hc}
}

// TestEveryNodeHearsEachChangeOnce publishes changes from each of three
// nodes on loopback: each other node hears each exactly once (gossip
// repeats messages; the echo is not delivered again), the publisher never
// hears its own, and the propagation times are reported.
func TestEveryNodeHearsEachChangeOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spaced time.Duration
	}{{"sparse", 50 * time.Millisecond}, {"burst", 10 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) { testHearsOnce(t, tc.spaced) })
	}
}

// testHearsOnce publishes 30 changes from each node, a round every spaced.
func testHearsOnce(t *testing.T, spaced time.Duration) {
	nodes, heards := threeNodes(t)
	const perNode = 30
	sent := map[Change]time.Time{}
	for i := range perNode {
		for j, n := range nodes {
			c := Change{Kind: KindCredential, Tenant: fmt.Sprintf("tenant-%d", j), Integration: fmt.Sprintf("int-%d", i)}
			sent[c] = time.Now()
			if err := n.Publish(c); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(spaced)
	}
	want := 2 * perNode
	for i, h := range heards {
		waitFor(t, 2*time.Second, fmt.Sprintf("node %d hears %d changes", i, want), func() bool {
			got, _ := h.snapshot()
			return len(got) >= want
		})
	}
	time.Sleep(time.Second) // time for any echo to arrive
	var delays []time.Duration
	for i, h := range heards {
		got, at := h.snapshot()
		if len(got) != want {
			t.Errorf("node %d heard %d changes, want %d (each once)", i, len(got), want)
		}
		counts := map[Change]int{}
		for k, c := range got {
			counts[c]++
			if c.Tenant == fmt.Sprintf("tenant-%d", i) {
				t.Errorf("node %d heard its own change %+v", i, c)
			}
			delays = append(delays, at[k].Sub(sent[c]))
		}
		for c, n := range counts {
			if n != 1 {
				t.Errorf("node %d heard %+v %d times", i, c, n)
			}
		}
	}
	slices.Sort(delays)
	t.Logf("propagation over 3 nodes on loopback, %d deliveries: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(delays), ms(delays[len(delays)/2]), ms(delays[len(delays)*99/100]), ms(delays[len(delays)-1]))
	if max := delays[len(delays)-1]; max > 2*time.Second {
		t.Errorf("slowest delivery took %v, over the 2 s bound", max)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestLargeChangeGoesOverTCP: a change too large for a gossip packet (a
// long sealed session ID) reaches every other node once, over TCP.
func TestLargeChangeGoesOverTCP(t *testing.T) {
	nodes, heards := threeNodes(t)
	c := Change{Kind: KindSessionEnded, Tenant: "acme", Session: strings.Repeat("s", 1500)}
	if err := nodes[0].Publish(c); err != nil {
		t.Fatal(err)
	}
	for i, h := range heards[1:] {
		waitFor(t, 2*time.Second, fmt.Sprintf("node %d hears the session end", i+1), func() bool {
			got, _ := h.snapshot()
			return len(got) == 1 && got[0] == c
		})
	}
}

// TestWrongKeyHearsNothing: a node with another key cannot join, hears
// none of the cluster's changes, and the cluster hears none of its own.
func TestWrongKeyHearsNothing(t *testing.T) {
	nodes, heards := threeNodes(t)
	other := bytes.Repeat([]byte{8}, 32)
	stranger, hs := startNode(t, "stranger", other, nodes[0].Addr(), nodes[1].Addr())
	for _, n := range nodes {
		if err := n.Publish(Change{Kind: KindOffboarded, Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stranger.Publish(Change{Kind: KindCredential, Tenant: "acme", Integration: "notion"}); err != nil {
		t.Fatal(err)
	}
	// The cluster's own changes arrive: the wait is long enough for the
	// stranger's to have, too.
	for i, h := range heards {
		waitFor(t, 2*time.Second, fmt.Sprintf("node %d hears the two others' changes", i), func() bool {
			got, _ := h.snapshot()
			return len(got) == 2
		})
	}
	time.Sleep(time.Second)
	if got, _ := hs.snapshot(); len(got) != 0 {
		t.Errorf("the node with the wrong key heard %+v", got)
	}
	for i, h := range heards {
		if got, _ := h.snapshot(); len(got) != 2 {
			t.Errorf("node %d heard %+v, want only the cluster's two", i, got)
		}
	}
	if m := stranger.Members(); m != 1 {
		t.Errorf("the node with the wrong key sees %d members, want itself only", m)
	}
	for i, n := range nodes {
		if m := n.Members(); m != 3 {
			t.Errorf("node %d sees %d members, want 3", i, m)
		}
	}
}

// TestMalformedDropped sends hostile payloads through memberlist itself
// (gossip and TCP, encrypted with the right key): each is dropped and
// counted, none reaches OnChange, and a good change after them does.
func TestMalformedDropped(t *testing.T) {
	nodes, heards := threeNodes(t)
	from, to := nodes[0], nodes[1]
	bad := [][]byte{
		[]byte("not json"),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"grant_admin","tenant":"acme"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"credential","tenant":"acme"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"credential","integration":"notion"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"settings","tenant":"ac\nme"}`),
		[]byte(`{"id":"short","kind":"settings","tenant":"acme"}`),
		[]byte(`{"kind":"settings","tenant":"acme"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"settings","tenant":"` + strings.Repeat("a", 200) + `"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"offboarded","tenant":"acme","integration":"notion"}`),
		[]byte(`{"id":"0123456789abcdef01234567","kind":"settings","tenant":"acme","session":"s"}`),
		bytes.Repeat([]byte("x"), maxMessage+1),
	}
	var target *memberlist.Node
	for _, m := range from.ml.Members() {
		if m.Name == "b" {
			target = m
		}
	}
	for i, msg := range bad {
		if len(msg) <= maxBroadcast && i%2 == 0 {
			from.queue.QueueBroadcast(broadcast(msg))
		} else if err := from.ml.SendReliable(target, msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, fmt.Sprintf("node b drops %d messages", len(bad)), func() bool {
		return to.Dropped() >= int64(len(bad))
	})
	good := Change{Kind: KindSettings, Tenant: "acme", Integration: "notion"}
	if err := from.Publish(good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "node b hears the good change", func() bool {
		got, _ := heards[1].snapshot()
		return len(got) > 0
	})
	if got, _ := heards[1].snapshot(); !slices.Equal(got, []Change{good}) {
		t.Errorf("node b heard %+v, want only %+v", got, good)
	}
	if n := to.Received(); n != 1 {
		t.Errorf("Received = %d, want 1", n)
	}
}

// TestRejoin: a node whose peer is not up yet keeps joining, and finds it
// once it starts; after the peer restarts (a new member at the same
// address), it finds it again and the two hear each other.
func TestRejoin(t *testing.T) {
	addr := freeAddr(t)
	b, hb := startNode(t, "b", testKey, addr)
	time.Sleep(300 * time.Millisecond) // a join attempt or two fail
	a, _ := startNodeAt(t, "a", addr, testKey)
	waitFor(t, 3*time.Second, "b joins a once a starts", func() bool { return a.Members() == 2 && b.Members() == 2 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "b sees a leave", func() bool { return b.Members() == 1 })
	a2, _ := startNodeAt(t, "a2", addr, testKey)
	waitFor(t, 3*time.Second, "b rejoins the restarted a", func() bool { return a2.Members() == 2 && b.Members() == 2 })
	c := Change{Kind: KindKeyRotated, Tenant: "acme"}
	if err := a2.Publish(c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "b hears the restarted node", func() bool {
		got, _ := hb.snapshot()
		return slices.Equal(got, []Change{c})
	})
}

// freeAddr returns a loopback host:port free for TCP and UDP just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// TestNewRefusesWithoutKey: no key, or one of the wrong size, is refused:
// there is no insecure mode.
func TestNewRefusesWithoutKey(t *testing.T) {
	for _, key := range [][]byte{nil, make([]byte, 8), make([]byte, 33)} {
		if n, err := New(Options{Bind: "127.0.0.1:0", Secret: key}); err == nil {
			n.Close()
			t.Errorf("New with a %d-byte key: no error", len(key))
		}
	}
	if _, err := New(Options{Bind: "nonsense", Secret: testKey}); err == nil {
		t.Error("New with a Bind that is no host:port: no error")
	}
}

// TestSixNodesPassOn: in a cluster larger than one gossip round reaches,
// receivers pass changes on; still each node hears each change once.
func TestSixNodesPassOn(t *testing.T) {
	first, h0 := startNode(t, "n0", testKey)
	nodes, heards := []*Node{first}, []*heard{h0}
	for i := 1; i < 6; i++ {
		n, h := startNode(t, fmt.Sprintf("n%d", i), testKey, first.Addr())
		nodes, heards = append(nodes, n), append(heards, h)
	}
	waitFor(t, 5*time.Second, "six members on every node", func() bool {
		for _, n := range nodes {
			if n.Members() != 6 {
				return false
			}
		}
		return true
	})
	for i := range 10 {
		if err := nodes[i%6].Publish(Change{Kind: KindSettings, Tenant: fmt.Sprintf("t%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range heards {
		mine := 0
		for k := range 10 {
			if k%6 == i {
				mine++
			}
		}
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			got, _ := h.snapshot()
			if len(got) >= 10-mine {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 2s node %d heard %d of its %d changes", i, len(got), 10-mine)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got, _ := h.snapshot(); len(got) != 10-mine {
			t.Errorf("node %d heard %d changes, want %d", i, len(got), 10-mine)
		}
	}
}

// TestPublishThenClose: a node that joins, publishes and closes at once
// (an operator command) still gets its change to the others.
func TestPublishThenClose(t *testing.T) {
	a, ha := startNode(t, "a", testKey)
	_, hb := startNode(t, "b", testKey, a.Addr())
	waitFor(t, 5*time.Second, "a and b see each other", func() bool { return a.Members() == 2 })
	for i := range 3 {
		cli, _ := startNode(t, fmt.Sprintf("cli-%d", i), testKey, a.Addr())
		if cli.Members() != 3 {
			t.Fatalf("New returned before joining: %d members", cli.Members())
		}
		c := Change{Kind: KindOffboarded, Tenant: fmt.Sprintf("t%d", i)}
		if err := cli.Publish(c); err != nil {
			t.Fatal(err)
		}
		if err := cli.Close(); err != nil {
			t.Fatal(err)
		}
		for name, h := range map[string]*heard{"a": ha, "b": hb} {
			waitFor(t, 2*time.Second, name+" hears the closed node's change", func() bool {
				got, _ := h.snapshot()
				return slices.Contains(got, c)
			})
		}
	}
}
