package tools

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// An upstream's failure reaches the agent as what failed, never where: the
// integration and the kind of failure ("unreachable", "timed out",
// "crashed", ...), without the URL, host:port, IP, file path or the
// transport's own text, which go to the log. In the spirit of tailscale's
// util/vizerror, the message an agent may see is kept apart from the
// internal error it wraps, and it is the message that Error returns: an
// error that reaches an answer by any lane says only that.

// Kinds of upstream failure, as an agent is told them.
const (
	KindUnreachable = "unreachable"
	KindTimedOut    = "timed out"
	KindCrashed     = "crashed"
	KindHung        = "stopped answering"
	KindRefused     = "refused the credential"
	KindClosed      = "closed"
	KindProtocol    = "answered in a way the gateway cannot read"
	KindStart       = "could not be started"
	KindFailed      = "failed"
)

// UpstreamError is an upstream failure as an agent may see it: Error
// names the integration and the kind, and Err, for errors.Is and the log
// (Detail), is the internal error with its addresses.
type UpstreamError struct {
	Integration string
	Kind        string
	msg         string // what Error returns
	Err         error
	rpc         bool // the upstream answered the request with a JSON-RPC error
}

// Refused returns the JSON-RPC error an upstream answered a direct call
// with when the agent is to see it as one rather than as a tool error,
// because it can act on it: a MissingRequiredClientCapability (-32021,
// 2026-07-28), which names what the agent must declare. Its object is the
// upstream's, with the credential's values redacted.
func Refused(err error) (*RPCError, bool) {
	e, ok := errors.AsType[*rpcAnswer](err)
	if !ok || e.refusal == nil {
		return nil, false
	}
	return e.refusal, true
}

// rpcAnswer is a JSON-RPC error answer of a direct call: the error mcp-go
// makes of it, and, for the codes an agent is to see (Refused), the error
// object.
type rpcAnswer struct {
	err     error
	refusal *RPCError
}

func (e *rpcAnswer) Error() string { return e.err.Error() }
func (e *rpcAnswer) Unwrap() error { return e.err }

// answerError is the error of a direct call's JSON-RPC error answer d.
func answerError(d *mcp.JSONRPCErrorDetails) error {
	e := &rpcAnswer{err: d.AsError()}
	if d.Code == mcp.MISSING_REQUIRED_CLIENT_CAPABILITY {
		if object, err := json.Marshal(d); err == nil {
			e.refusal = &RPCError{Code: d.Code, Object: object}
		}
	}
	return e
}

// scrubRefusal redacts the credential's values from the refusal err may
// hold; one that cannot be is withheld (the agent gets a tool error).
func scrubRefusal(err error, s *Scrubber) {
	e, ok := errors.AsType[*rpcAnswer](err)
	if !ok || e.refusal == nil {
		return
	}
	clean, ok := s.JSON(e.refusal.Object)
	if !ok {
		e.refusal = nil
		return
	}
	e.refusal = &RPCError{Code: e.refusal.Code, Object: clean}
}

// Answered reports whether err is the upstream's JSON-RPC error answer to
// the request (rather than a failure to get one).
func Answered(err error) bool {
	e, ok := errors.AsType[*UpstreamError](err)
	return ok && e.rpc
}

func (e *UpstreamError) Error() string { return e.msg }

// Unwrap returns the internal error.
func (e *UpstreamError) Unwrap() error { return e.Err }

// Detail is the internal error's text, for operators' logs.
func (e *UpstreamError) Detail() string { return e.Err.Error() }

// Public reports whether err's text may reach an agent as it is: it is, or
// is made of, errors of this package that say what failed and not where
// (an *UpstreamError, a *TimeoutError, an *IntegrationError, the pool or a
// conn closing). A caller with another error tells the agent less and
// logs it.
func Public(err error) bool {
	switch err.(type) {
	case *UpstreamError, *TimeoutError, *IntegrationError:
		return true
	case *redactedError:
		return Public(errors.Unwrap(err))
	}
	return errors.Is(err, ErrPoolClosed) || err == ErrConnClosed || err == ErrNoDirect
}

var statusRE = regexp.MustCompile(`status (\d{3})`)

// failure classifies err, a failure of integration's upstream, into what
// an agent may be told of it. Errors already public, and the end of the
// caller's own context, are returned as they are.
func failure(integration string, err error) error {
	if err == nil || Public(err) || err == context.Canceled || err == context.DeadlineExceeded {
		return err
	}
	e := &UpstreamError{Integration: integration, Err: err}
	up := "upstream " + integration
	var exit *exitError
	var exitStatus *exec.ExitError
	var dns *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	var pathErr *fs.PathError
	var te *transport.Error
	switch {
	case errors.Is(err, ErrUpstreamHung):
		e.Kind, e.msg = KindHung, up+" stopped answering and was restarted; retry the call"
	case errors.Is(err, ErrUpstreamStuck):
		e.Kind, e.msg = KindHung, up+" stopped reading its input and was restarted; retry the call"
	case errors.As(err, &exit):
		e.Kind, e.msg = KindCrashed, up+" crashed: its process exited"
		if errors.As(exit.err, &exitStatus) {
			e.msg += " (" + exitStatus.String() + ")"
		}
		e.msg += "; the next call starts it again"
	case errors.Is(err, ErrUpstreamExited):
		e.Kind, e.msg = KindCrashed, up+" crashed: its process exited; the next call starts it again"
	case errors.Is(err, transport.ErrAuthorizationRequired), errors.Is(err, transport.ErrUnauthorized):
		e.Kind, e.msg = KindRefused, up+" refused the credential (HTTP 401)"
	case errors.As(err, &dns):
		e.Kind, e.msg = KindUnreachable, up+" is unreachable: its host name could not be resolved"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Kind, e.msg = KindUnreachable, up+" is unreachable: connection refused"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recordErr):
		e.Kind, e.msg = KindUnreachable, up+" is unreachable: the TLS handshake failed"
	case errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		e.Kind, e.msg = KindUnreachable, up+" is unreachable: connecting timed out"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e.Kind, e.msg = KindUnreachable, up+" is unreachable: the connection could not be made"
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Kind, e.msg = KindTimedOut, up+" timed out"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, transport.ErrTransportClosed), errors.Is(err, syscall.EPIPE), errors.Is(err, fs.ErrClosed):
		e.Kind, e.msg = KindClosed, up+" closed the connection"
	case errors.Is(err, ErrConnClosed):
		e.Kind, e.msg = KindClosed, up+" connection was closed; retry the call"
	case errors.As(err, &te):
		if m := statusRE.FindStringSubmatch(te.Err.Error()); m != nil {
			e.Kind, e.msg = KindFailed, up+" failed: it answered HTTP "+m[1]
		} else {
			e.Kind, e.msg = KindProtocol, up+" failed: it "+KindProtocol
		}
	case errors.As(err, new(*exec.Error)), errors.As(err, &pathErr) && pathErr.Op == "fork/exec":
		e.Kind, e.msg = KindStart, up+" could not be started: its command could not be run"
	default:
		e.Kind, e.msg = KindFailed, up+" failed"
	}
	return e
}

// answered is failure for an error the upstream answered with: a JSON-RPC
// error is the upstream's own word (as a tool result is), not the
// transport's, and reaches the agent (scrubbed, as all it sends).
// Failures of the transport are classified by failure.
func answered(integration string, err error) error {
	if err == nil || Public(err) || errors.As(err, new(*transport.Error)) || err == context.Canceled || err == context.DeadlineExceeded {
		return failure(integration, err)
	}
	return &UpstreamError{Integration: integration, Kind: KindFailed, msg: "upstream " + integration + " answered with an error: " + err.Error(), Err: err, rpc: true}
}

// startFailure is failure for an upstream that could not be started:
// "starting upstream X failed: it is unreachable ...", or "did not start
// within" when the start ran out of time.
func startFailure(integration string, limit time.Duration, timedOut bool, err error) error {
	if timedOut {
		return &UpstreamError{Integration: integration, Kind: KindTimedOut,
			msg: fmt.Sprintf("starting upstream %s timed out: it did not start within %s", integration, limit), Err: err}
	}
	var f *UpstreamError
	switch pub := failure(integration, err).(type) {
	case *UpstreamError:
		f = pub
	default: // already public: a closed pool, ...
		return pub
	}
	msg := "starting upstream " + integration + " failed"
	switch f.Kind {
	case KindFailed:
		f.Kind = KindStart
	case KindStart:
		msg += ": its command could not be run"
	default:
		msg += ": it " + strings.TrimPrefix(f.msg, "upstream "+integration+" ")
	}
	f.msg = msg
	return f
}
