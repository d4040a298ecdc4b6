package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxAPIAnswer bounds what the console reads of one answer of the API.
const maxAPIAnswer = 8 << 20

// call is one request the console makes of the gateway's API on behalf of
// the browser's request: the same cookie, Host, Origin and remote address,
// so that the API authenticates the browser's session and applies its own
// rules to it. State-changing calls carry the form's CSRF token, which the
// API checks against the session.
type call struct {
	method, path string
	query        url.Values
	body         any    // JSON-encoded when not nil
	csrf         string // the form's csrf_token, for a state-changing call
	accept       string // empty: application/json
}

// answer is what the API answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// apiError is an answer of the API that is not a success, as a page shows
// it: the status, the error's name and its message.
type apiError struct {
	Status  int
	Name    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Name, e.Message)
}

// errAnswer reads an error answer of the API.
func errAnswer(a answer) *apiError {
	e := &apiError{Status: a.status}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(a.body, &body) == nil {
		e.Name, e.Message = body.Error, body.Message
	}
	if e.Name == "" {
		e.Name = http.StatusText(a.status)
	}
	return e
}

// do makes c of api for the browser's request r.
func (c call) do(ctx context.Context, api http.Handler, r *http.Request) (answer, error) {
	if api == nil {
		return answer{}, errors.New("console: not bound to the gateway's API")
	}
	var body io.Reader = http.NoBody
	if c.body != nil {
		data, err := json.Marshal(c.body)
		if err != nil {
			return answer{}, err
		}
		body = bytes.NewReader(data)
	}
	u := url.URL{Path: c.path}
	if c.query != nil {
		u.RawQuery = c.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u.RequestURI(), body)
	if err != nil {
		return answer{}, err
	}
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	for _, h := range []string{"Cookie", "Origin", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	w := &recorder{header: http.Header{}}
	api.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.overflow {
		return answer{}, fmt.Errorf("console: %s %s answered more than %d bytes", c.method, c.path, maxAPIAnswer)
	}
	return answer{status: w.status, header: w.header, body: w.body.Bytes()}, nil
}

// into makes c and decodes a 2xx answer into v (nil: the body is not
// read); any other answer is an *apiError.
func (c call) into(ctx context.Context, api http.Handler, r *http.Request, v any) (answer, error) {
	a, err := c.do(ctx, api, r)
	if err != nil {
		return a, err
	}
	if a.status < 200 || a.status > 299 {
		return a, errAnswer(a)
	}
	if v != nil && a.status != http.StatusNoContent {
		if err := json.Unmarshal(a.body, v); err != nil {
			return a, fmt.Errorf("console: %s %s: reading the answer: %w", c.method, c.path, err)
		}
	}
	return a, nil
}

// recorder is the ResponseWriter of an in-process call: the answer kept
// in memory, bounded.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > maxAPIAnswer {
		w.overflow = true
		return 0, errors.New("console: answer too large")
	}
	return w.body.Write(p)
}

// Flush lets handlers that flush write into the recorder.
func (w *recorder) Flush() {}

// pathEscape escapes one path segment of an API route.
func pathEscape(s string) string { return url.PathEscape(s) }

// tenantPath is /tenants/{tenant}/rest...
func tenantPath(tenant string, rest ...string) string {
	var b strings.Builder
	b.WriteString("/tenants/")
	b.WriteString(pathEscape(tenant))
	for _, s := range rest {
		b.WriteByte('/')
		b.WriteString(pathEscape(s))
	}
	return b.String()
}
