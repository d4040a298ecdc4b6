package tools

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client/transport"
)

func TestResponseID(t *testing.T) {
	for _, tc := range []struct {
		line string
		id   string
		ok   bool
	}{
		{`{"jsonrpc":"2.0","id":"gw-1","result":{}}`, "gw-1", true},
		{` {"result":{"x":"\"id\":\"gw-9\""} , "id" : "gw-2"} `, "gw-2", true},
		{`{"jsonrpc":"2.0","ID":"gw-3","result":{}}`, "gw-3", true},                    // encoding/json ignores case
		{`{"jsonrpc":"2.0","id":"gw-x","id":"gw-4","result":{}}`, "gw-4", true},        // the last one
		{`{"jsonrpc":"2.0","id":"gw\u002d5","result":{}}`, "gw-5", true},               // escapes undone
		{`{"jsonrpc":"2.0","\u0069d":"gw-6","result":{}}`, "gw-6", true},               // in keys too
		{`{"jsonrpc":"2.0","id":"gw-7","method":"","result":{}}`, "gw-7", true},        // an empty method is none
		{`{"jsonrpc":"2.0","id":"gw-8","method":"sampling/createMessage"}`, "", false}, // a request of the server's
		{`{"jsonrpc":"2.0","id":"gw-8","Method":"roots/list"}`, "", false},
		{`{"jsonrpc":"2.0","id":8,"result":{}}`, "", false},
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"gw-1"}}`, "", false},
		{`{"id":"gw-9","method":"roots/list","method":null}`, "", false}, // null leaves the method as it was
		{`{"id":"gw-9","METHOD":"roots/list","method":null}`, "", false},
		{`{"id":"gw-10","method":null,"result":{}}`, "gw-10", true},
		{`["gw-1"]`, "", false},
		{`{"id":"gw-1"`, "", false},
	} {
		id, ok := responseID([]byte(tc.line))
		if id != tc.id || ok != tc.ok {
			t.Errorf("responseID(%s) = %q, %v; want %q, %v", tc.line, id, ok, tc.id, tc.ok)
		}
	}
}

// FuzzResponseID: responseID reads a line as mcp-go's reader
// (encoding/json) does: a response with a string ID, or not one.
func FuzzResponseID(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":"gw-1","result":{}}`, `{"id":"gw-9","method":"roots/list","method":null}`,
		`{"ID":"gw-3","Id":"gw-4"}`, `{"id":"gw\u002d5","method":""}`, `{"id":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		id, ok := responseID(line)
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		var want string
		wantOK := json.Unmarshal(line, &probe) == nil && probe.Method == "" && len(probe.ID) > 0 && probe.ID[0] == '"' &&
			json.Unmarshal(probe.ID, &want) == nil
		if ok != wantOK || ok && id != want {
			t.Errorf("responseID(%s) = %q, %v; encoding/json: %q, %v", line, id, ok, want, wantOK)
		}
	})
}

// childPipes stands in for a child process: what is written to the pipe
// arrives on stdin; stdout takes lines to send as the child.
func childPipes(t *testing.T) (p *pipe, stdin *bufio.Reader, stdout io.WriteCloser) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	t.Cleanup(func() { inR.Close(); outW.Close() })
	return newPipe(outR, inW), bufio.NewReader(inR), outW
}

// The transport's reader sees every line but the direct calls' responses,
// unchanged, long ones included; each direct call gets its own response.
func TestPipeLanes(t *testing.T) {
	p, stdin, stdout := childPipes(t)
	long := `{"jsonrpc":"2.0","id":1,"result":{"text":"` + strings.Repeat("gw-", 100_000) + `"}}`
	passed := []string{
		`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"gw-1"}}`,
		long,
		`{"jsonrpc":"2.0","id":"gw-1","method":"roots/list"}`,
		`{"jsonrpc":"2.0","id":"gw-unknown","result":{}}`, // nobody waits for it
		`not json at all "gw-`,
	}
	var got []string
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r := bufio.NewReader(p) // as NewIO reads it
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
	}()

	const calls = 8
	results := make([]string, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			line, err := p.call(t.Context(), fmt.Sprintf("gw-c%d", i), fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"gw-c%d","method":"tools/call"}`+"\n", i))
			results[i], errs[i] = string(line), err
		})
	}
	// The child: reads the calls, answers them in reverse, the other lines
	// in between.
	var ids []string
	for range calls {
		line, err := stdin.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strings.CutPrefix(line, `{"jsonrpc":"2.0","id":"`)
		id, _, _ = strings.Cut(id, `"`)
		ids = append(ids, id)
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if i < len(passed) {
			io.WriteString(stdout, passed[i]+"\n")
		}
		fmt.Fprintf(stdout, `{"jsonrpc":"2.0","id":"%s","result":{"for":"%s"}}`+"\r\n", ids[i], ids[i])
	}
	wg.Wait()
	stdout.Close()
	<-readerDone

	for i := range calls {
		want := fmt.Sprintf(`{"jsonrpc":"2.0","id":"gw-c%d","result":{"for":"gw-c%d"}}`, i, i)
		if errs[i] != nil || results[i] != want {
			t.Errorf("call %d: %s, %v; want %s", i, results[i], errs[i], want)
		}
	}
	var want []string
	for i := len(ids) - 1; i >= 0; i-- {
		if i < len(passed) {
			want = append(want, passed[i])
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lines the transport's reader saw (-want +got):\n%.2000s", d)
	}
}

// A direct call ends when the child's stdout does, and when its context does.
func TestPipeEnds(t *testing.T) {
	p, stdin, stdout := childPipes(t)
	go io.Copy(io.Discard, p) // the transport's reader
	go io.Copy(io.Discard, stdin)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.call(ctx, "gw-a", []byte("{}\n")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled call: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.call(t.Context(), "gw-b", []byte("{}\n"))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	stdout.Close()
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrTransportClosed) {
			t.Errorf("call when stdout ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call outlived the child's stdout")
	}
	if _, err := p.call(t.Context(), "gw-c", []byte("{}\n")); !errors.Is(err, transport.ErrTransportClosed) {
		t.Errorf("call after stdout ended: %v", err)
	}
}

// An upstream that writes the response's ID with escapes (valid JSON, if
// odd) still answers the direct call that sent it, as mcp-go's reader would
// match it, rather than leaving the call to its timeout.
func TestPipeEscapedID(t *testing.T) {
	p, stdin, stdout := childPipes(t)
	go io.Copy(io.Discard, p) // the transport's reader
	go func() {
		if _, err := stdin.ReadString('\n'); err == nil {
			io.WriteString(stdout, `{"jsonrpc":"2.0","id":"gw\u002d7","result":{"content":[]}}`+"\n")
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	line, err := p.call(ctx, "gw-7", []byte(`{"jsonrpc":"2.0","id":"gw-7","method":"tools/call"}`+"\n"))
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if res, err := answer(line, "gw-7"); err != nil || string(res) != `{"content":[]}` {
		t.Errorf("answer(%s) = %s, %v", line, res, err)
	}
}
