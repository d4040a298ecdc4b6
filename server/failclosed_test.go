package server

import (
	"encoding/json"
	"testing"
)

// FuzzReadRequest holds preflight's reading of a request to
// encoding/json's, which mcp-go dispatches by: a request must not reach a
// method unchecked because the walk read another one.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notion_x","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"METHOD":"tools/list","method":"ping"}`,
		`{"id":1,"metho\u0064":"tools/list"}`,
		`{"id":1,"method":"tools\/call","params":{"Name":"a","name":"b"}}`,
		`{"id":1,"method":"tools/call","params":{"name":1}}`,
		`{"id":1,"method":"tools/call","params":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var want request
		wantOK := json.Unmarshal(raw, &want) == nil
		got, ok := readRequest(raw)
		if ok != wantOK {
			if !ok {
				t.Fatalf("readRequest(%s) failed where encoding/json reads %+v", raw, want)
			}
			// The walk read what encoding/json could not (a params or
			// name of another type that it never needed): harmless
			// only if the method is one preflight leaves alone.
			return
		}
		if ok && (got.Method != want.Method || got.Method == "tools/call" && got.Params.Name != want.Params.Name) {
			t.Fatalf("readRequest(%s) = %+v, encoding/json reads %+v", raw, got, want)
		}
	})
}

func BenchmarkReadRequest(b *testing.B) {
	raw := json.RawMessage(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"notion_API-post-search","arguments":{"query":"quarterly plan","filter":{"property":"object","value":"page"},"page_size":25}}}`)
	b.ReportAllocs()
	for b.Loop() {
		readRequest(raw)
	}
}
