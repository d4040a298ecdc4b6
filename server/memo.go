package server

import (
	"context"
	"sync"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/vault"
)

// A request memo holds the credentials read while serving one HTTP
// request, so that the decision to list or call a tool (the tool filter)
// and the call itself read a tenant's credential once: one store read and
// one audit record per call instead of two.
type requestMemo struct {
	mu    sync.Mutex
	creds map[memoRef]memoEntry // guarded by mu
	// tickets are calls the direct lane admitted and handed to the usual
	// lane (limits.go); guarded by mu.
	tickets map[memoRef]limits.Ticket
}

type memoRef struct{ tenant, integration string }

type memoEntry struct {
	cred    vault.Credential
	version int64
	err     error
}

type memoKey struct{}

// withRequestMemo returns ctx carrying a memo for one request's
// credential reads. Give it only to a context that ends with its request
// (an HTTP request), never to a long-lived one (a stdio session): the
// memo is never refreshed.
//
// A ctx that carries a memo already is returned as is: the request's
// direct path and its mcp-go handling share one.
func withRequestMemo(ctx context.Context) context.Context {
	if _, ok := ctx.Value(memoKey{}).(*requestMemo); ok {
		return ctx
	}
	return context.WithValue(ctx, memoKey{}, &requestMemo{creds: map[memoRef]memoEntry{}})
}

// storeGet reads tenant's credential for integration, through the
// request's memo when ctx has one. Failures are kept too: a request that
// found the store unreachable fails at once on every later read of the
// same credential (the direct path's, the fail-closed check's, the
// call's) instead of waiting the store's bound again each time. The next
// request reads again.
func (g *Gateway) storeGet(ctx context.Context, tenant, integration string) (vault.Credential, int64, error) {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	ref := memoRef{tenant, integration}
	if m != nil {
		m.mu.Lock()
		e, ok := m.creds[ref]
		m.mu.Unlock()
		if ok {
			return e.cred, e.version, e.err
		}
	}
	cred, version, err := g.store.Get(ctx, tenant, integration)
	if m != nil && ctx.Err() == nil {
		m.mu.Lock()
		m.creds[ref] = memoEntry{cred, version, err}
		m.mu.Unlock()
	}
	return cred, version, err
}

// forget drops a memoized credential (it was refreshed).
func forget(ctx context.Context, tenant, integration string) {
	if m, _ := ctx.Value(memoKey{}).(*requestMemo); m != nil {
		m.mu.Lock()
		delete(m.creds, memoRef{tenant, integration})
		m.mu.Unlock()
	}
}
