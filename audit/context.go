package audit

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request ID id, which every record
// made with that context carries as requestId. The HTTP layer sets it once
// per request so that storage and refresh code deep below can be traced
// without new parameters.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
