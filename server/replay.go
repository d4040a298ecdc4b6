package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The era bridge, 2026-07-28 agent → initialize-era upstream. Such an
// upstream asks the agent (sampling, elicitation, roots) with requests of
// its own while the call runs, which a 2026-07-28 agent cannot be sent: it
// is answered input_required instead, and retries the call with the
// answers. The upstream call is replayed on the retry: a question the
// upstream asks again is answered with the agent's answer, and a question
// without an answer ends the call in a new round. So nothing is kept
// between the rounds but the requestState the agent holds: the answers so
// far, sealed (AES-256-GCM, with the key every replica shares) and bound
// to the tenant, the integration, the tool and its arguments, for a
// limited time. Any replica can take the retry; a state altered, expired,
// or made for another call is refused. A question is known again by its
// method and parameters, which a tool that asks the same thing on a replay
// repeats. The cost of a replay: what the tool did before it asked is done
// again on each round.

// Sealer seals and opens the gateway's requestState (tenants.BrowserSessions
// with the key replicas share).
type Sealer interface {
	SealData(purpose string, data []byte, ttl time.Duration) (string, error)
	OpenData(purpose, value string) ([]byte, error)
}

const (
	// replayStatePrefix begins the requestState of a replayed call.
	replayStatePrefix = "connectors-rounds."
	replayPurpose     = "cgw-request-state/v1"
	// replayTTL is how long an agent has to answer a round.
	replayTTL = 15 * time.Minute
	// replayQuiet is how long the upstream has been silent once it has asked
	// something, before the round is put to the agent: the upstream may ask
	// several things at once (mcp-go's servers ask them concurrently).
	replayQuiet = 50 * time.Millisecond
	// maxReplayState bounds the answers a state carries.
	maxReplayState = 256 << 10
)

// errReplayState refuses a retry whose requestState is of the gateway's form
// but not valid for the call.
var errReplayState = errors.New("the requestState is not valid for this call: it was altered, has expired, or was issued for another one")

// replayState is what a replayed call's requestState holds.
type replayState struct {
	Tenant      string                     `json:"t"`
	Integration string                     `json:"i"`
	Tool        string                     `json:"n"`
	Arguments   string                     `json:"a"` // a digest of the call's arguments
	Answers     map[string]json.RawMessage `json:"r,omitempty"`
}

// replay is one call's bridge: the answers it replays, and the questions of
// the upstream that have none, which end the call when it falls quiet.
type replay struct {
	state replayState
	caps  mcp.ClientCapabilities // the agent's, for this request
	end   context.CancelFunc     // ends the upstream call
	ended <-chan struct{}        // closed when it has

	mu       sync.Mutex
	asked    mcp.InputRequests
	quiet    *time.Timer
	released chan struct{} // closed to tell the upstream what the agent cannot answer
}

// replayFor returns the bridge of a 2026-07-28 agent's request of an
// initialize-era upstream (a tools/call, or a prompts/get: name says which,
// "prompt:" before a prompt's), with the answers of the retry p (which it
// takes out of p), or nil for any other request. A requestState of the
// gateway's form that does not open for this request is errReplayState.
func (g *Gateway) replayFor(ctx context.Context, modernUpstream bool, integration, name string, arguments any, p *mcp.MultiRoundTripParams) (*replay, error) {
	ours := strings.HasPrefix(p.RequestState, replayStatePrefix)
	if !mcpserver.IsModernRequest(ctx) || modernUpstream {
		if ours {
			return nil, errReplayState
		}
		return nil, nil
	}
	rp := &replay{state: replayState{Tenant: tenantOf(ctx), Integration: integration, Tool: name, Arguments: digest(arguments)}}
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		rp.caps = *info.ClientCapabilities
	}
	if ours {
		if err := rp.open(g.sealer, p.RequestState, p.InputResponses); err != nil {
			return nil, err
		}
	}
	// Answers to nothing the gateway asked are dropped too.
	p.RequestState, p.InputResponses = "", nil
	return rp, nil
}

// open takes the answers of state, and those of responses, into rp.
func (rp *replay) open(s Sealer, state string, responses mcp.InputResponses) error {
	data, err := s.OpenData(replayPurpose, strings.TrimPrefix(state, replayStatePrefix))
	if err != nil {
		return errReplayState
	}
	var st replayState
	if json.Unmarshal(data, &st) != nil {
		return errReplayState
	}
	want := rp.state
	if st.Tenant != want.Tenant || st.Integration != want.Integration || st.Tool != want.Tool || st.Arguments != want.Arguments {
		return errReplayState
	}
	if st.Answers == nil {
		st.Answers = map[string]json.RawMessage{}
	}
	for key, answer := range responses {
		raw, err := json.Marshal(answer)
		if err != nil {
			return fmt.Errorf("%w: the answer %q is not valid", errReplayState, key)
		}
		st.Answers[key] = raw
	}
	rp.state = st
	return nil
}

// digest is a short digest of v's JSON.
func digest(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// questionKey names a question of the upstream among a round's inputRequests.
func questionKey(req mcp.InputRequest) string {
	return "q-" + digest(req)
}

// round runs the upstream call with the bridge in place, and returns its
// outcome, or, when the upstream asked what the agent has not answered
// yet, the round to put to the agent instead (asked true).
func (rp *replay) round(ctx context.Context, s Sealer, call func(context.Context) error) (next mcp.MultiRoundTripResult, asked bool, err error) {
	ctx, rp.end = context.WithCancel(ctx)
	rp.ended = ctx.Done()
	defer rp.end()
	err = call(ctx)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.quiet != nil {
		rp.quiet.Stop()
	}
	if len(rp.asked) == 0 {
		return next, false, err
	}
	b, err := json.Marshal(rp.state)
	if err != nil || len(b) > maxReplayState {
		return next, true, &roundError{errors.New("the agent's answers are too large to carry to the next round")}
	}
	sealed, err := s.SealData(replayPurpose, b, replayTTL)
	if err != nil {
		return next, true, err
	}
	return mcp.MultiRoundTripResult{InputRequests: rp.asked, RequestState: replayStatePrefix + sealed}, true, nil
}

// asksInput is the Result of a result asking for input.
var asksInput = mcp.Result{ResultType: mcp.ResultTypeInputRequired}

// question answers one request of the upstream: with the agent's answer to
// it, or, when there is none yet, by holding it until the round is put to
// the agent (which ends the upstream call, and ctx with it).
func (rp *replay) question(ctx context.Context, req mcp.InputRequest, into any) error {
	refused := declares(rp.caps, req)
	key := questionKey(req)
	rp.mu.Lock()
	answer, ok := rp.state.Answers[key]
	switch {
	case refused != nil:
		// Told once the upstream falls quiet, not at once: an upstream that
		// asks several things concurrently may give up on all of them at
		// the first refusal, before it has asked the others.
	case !ok:
		if rp.asked == nil {
			rp.asked = mcp.InputRequests{}
		}
		rp.asked[key] = req
	}
	if refused != nil || !ok {
		rp.touch()
	}
	released := rp.released
	rp.mu.Unlock()
	if ok && refused == nil {
		if err := json.Unmarshal(answer, into); err != nil {
			return fmt.Errorf("the agent's answer to %s is not valid", req.Method)
		}
		return nil
	}
	select {
	case <-rp.ended:
		if refused != nil {
			return refused
		}
		return errors.New("the question was put to the agent, whose answer comes with its retry of the call")
	case <-released:
		return refused
	case <-ctx.Done():
		return ctx.Err()
	}
}

// touch (re)starts the wait for the upstream to fall quiet; rp.mu held.
func (rp *replay) touch() {
	if rp.released == nil {
		rp.released = make(chan struct{})
	}
	if rp.quiet == nil {
		rp.quiet = time.AfterFunc(replayQuiet, rp.settle)
	} else {
		rp.quiet.Reset(replayQuiet)
	}
}

// settle runs when the upstream has fallen quiet: with questions for the
// agent, the round is put to it (the upstream call ends); with only
// questions the agent cannot answer, the upstream is told so, and goes on.
func (rp *replay) settle() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.asked) > 0 {
		rp.end()
		return
	}
	if rp.released != nil {
		close(rp.released)
		rp.released = nil
	}
}
