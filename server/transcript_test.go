package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the answers recorded in testdata/transcripts")

// Transcripts (testdata/transcripts/*.txtar) record what the gateway
// answers, as the go-sdk's conformance tests do. Each holds:
//
//   - its comment: what it shows;
//   - client: the frames the agent sends, one a line, each sent as
//     written (see peer);
//   - stdio, http: what the gateway answers over stdio and over
//     streamable HTTP, normalised (see normalise); each transport a
//     transcript has a section for runs it. Over HTTP a note ("# 200 OK
//     application/json") tells each POST's status;
//   - direct: the tools the direct lane served over HTTP, one a line;
//   - peer (optional): "tenant: NAME" (default tenant-a) and "path: PATH"
//     (default /mcp), the HTTP endpoint.
//
// Over HTTP each transcript runs twice, with the direct lane
// (server.Gateway.CallDirect) and without: the answers must be the same,
// and the one http section holds both. `go test ./server -run Transcript
// -update` writes what the gateway answers now into the files; a new
// transcript needs only its comment, its client section (and a peer
// section, for other than the defaults) and an empty section for each
// transport it is to run on.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "transcripts", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			t.Parallel()
			tr := loadTranscript(t, file)
			got := map[string][]string{}
			if tr.has(sectionStdio) {
				got[sectionStdio] = runStdio(t, tr)
			}
			if tr.has(sectionHTTP) {
				on, direct := runHTTP(t, tr, true)
				off, _ := runHTTP(t, tr, false)
				if diff := cmp.Diff(on, off); diff != "" {
					t.Fatalf("%s: the direct lane answers otherwise than the usual one (-direct +usual):\n%s", file, diff)
				}
				got[sectionHTTP], got[sectionDirect] = off, direct
			}
			if *update {
				tr.write(t, got)
				return
			}
			for _, name := range []string{sectionStdio, sectionHTTP, sectionDirect} {
				if want, ok := got[name]; ok {
					if diff := cmp.Diff(tr.lines(name), want); diff != "" {
						t.Errorf("%s: %s differs from the transcript (-want +got):\n%s", file, name, diff)
					}
				}
			}
		})
	}
}

// The sections of a transcript.
const (
	sectionClient = "client"
	sectionStdio  = "stdio"
	sectionHTTP   = "http"
	sectionDirect = "direct"
	sectionPeer   = "peer"
)

// transcript is one testdata/transcripts file.
type transcript struct {
	path    string
	archive *txtar.Archive
	client  [][]byte
	tenant  string // the agent's tenant
	// endpoint is the HTTP path the agent talks to.
	endpoint string
}

func loadTranscript(t *testing.T, path string) *transcript {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := &transcript{path: path, archive: txtar.Parse(data), tenant: "tenant-a", endpoint: "/mcp"}
	seen := map[string]bool{}
	for _, f := range tr.archive.Files {
		if seen[f.Name] {
			t.Fatalf("%s: section %q twice", path, f.Name)
		}
		seen[f.Name] = true
		switch f.Name {
		case sectionClient:
			for line := range bytes.Lines(f.Data) {
				if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
					tr.client = append(tr.client, line)
				}
			}
		case sectionPeer:
			for _, line := range tr.lines(sectionPeer) {
				key, value, _ := strings.Cut(line, ":")
				switch key, value = strings.TrimSpace(key), strings.TrimSpace(value); key {
				case "tenant":
					tr.tenant = value
				case "path":
					tr.endpoint = value
				default:
					t.Fatalf("%s: peer: unknown setting %q", path, key)
				}
			}
		case sectionStdio, sectionHTTP, sectionDirect:
		default:
			t.Fatalf("%s: unknown section %q", path, f.Name)
		}
	}
	if len(tr.client) == 0 || !tr.has(sectionStdio) && !tr.has(sectionHTTP) {
		t.Fatalf("%s: a transcript needs a client section and a stdio or http one", path)
	}
	return tr
}

func (tr *transcript) has(section string) bool {
	return slices.ContainsFunc(tr.archive.Files, func(f txtar.File) bool { return f.Name == section })
}

// lines returns a section's lines, without the empty ones.
func (tr *transcript) lines(section string) []string {
	var out []string
	for _, f := range tr.archive.Files {
		if f.Name != section {
			continue
		}
		for line := range strings.Lines(string(f.Data)) {
			if line = strings.TrimRight(line, "\r\n"); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// write rewrites the transcript's file with the sections got.
func (tr *transcript) write(t *testing.T, got map[string][]string) {
	t.Helper()
	set := func(name string, lines []string) {
		data := []byte(strings.Join(lines, "\n") + "\n")
		if len(lines) == 0 {
			data = nil
		}
		for i, f := range tr.archive.Files {
			if f.Name == name {
				tr.archive.Files[i].Data = data
				return
			}
		}
		tr.archive.Files = append(tr.archive.Files, txtar.File{Name: name, Data: data})
	}
	for _, name := range []string{sectionStdio, sectionHTTP, sectionDirect} {
		if lines, ok := got[name]; ok {
			set(name, lines)
		}
	}
	if err := os.WriteFile(tr.path, txtar.Format(tr.archive), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runStdio plays the transcript to a gateway serving stdio and returns
// what it answered.
func runStdio(t *testing.T, tr *transcript) []string {
	h := newHarness(t, false)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		err := h.serveStdio(ctx, tr.tenant, inR, outW)
		outW.Close()
		served <- err
	}()
	w := newStdioWire(inW, outR)
	play(t, tr, w)
	if err := <-served; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		t.Errorf("serving stdio: %v", err)
	}
	return normalise(t, w.recorded())
}

// runHTTP plays the transcript to a gateway serving streamable HTTP, with
// the direct lane or without, and returns what it answered and the tools
// the direct lane served.
func runHTTP(t *testing.T, tr *transcript, direct bool) (answers, served []string) {
	h := newHarness(t, direct)
	srv := httptest.NewServer(h.httpHandler(t))
	defer srv.Close()
	w := newHTTPWire(srv.URL+tr.endpoint, h.keys[tr.tenant])
	play(t, tr, w)
	if h.direct != nil {
		served = h.direct.calls()
	}
	return normalise(t, w.recorded()), served
}

// play sends the transcript's client lines on w, then closes it.
func play(t *testing.T, tr *transcript, w wire) {
	t.Helper()
	ctx := t.Context()
	p := newPeer(ctx, w)
	for i, line := range tr.client {
		if err := p.send(ctx, line); err != nil {
			p.close()
			t.Fatalf("%s: client line %d: %v", tr.path, i+1, err)
		}
	}
	p.close()
}

// varying are the values that differ from run to run, and what a
// transcript holds instead. (Over HTTP the session ID is a header, which
// the wire's note names <session>; the gateway's serverInfo version is
// the harness's, "test".)
var varying = []struct {
	re *regexp.Regexp
	as string
}{
	// Session IDs, request IDs.
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
	// The IDs of the gateway's own requests to upstreams.
	{regexp.MustCompile(`\bgw-[0-9a-z]+\b`), "<gateway-id>"},
	// Timestamps (RFC 3339).
	{regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
}

// normalise turns recorded frames into a transcript's lines: each JSON
// frame indented, its keys sorted, values that vary from run to run
// replaced; the wire's notes as they are.
func normalise(t *testing.T, recorded []string) []string {
	t.Helper()
	var out []string
	for _, frame := range recorded {
		if strings.HasPrefix(frame, "# ") {
			out = append(out, frame)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(frame))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			out = append(out, "# not JSON: "+frame)
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "\t")
		if err := enc.Encode(vary(v)); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")...)
	}
	return out
}

// vary replaces, in a decoded frame, the values that differ from run to run.
func vary(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = vary(e)
		}
	case []any:
		for i, e := range v {
			v[i] = vary(e)
		}
	case string:
		for _, r := range varying {
			v = r.re.ReplaceAllString(v, r.as)
		}
		return v
	}
	return v
}
