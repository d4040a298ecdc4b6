package tools

import (
	"bytes"
	"fmt"
	"testing"
)

var answerSeeds = []string{
	`{"jsonrpc":"2.0","id":"gw-1","result":{"content":[{"type":"text","text":"hi"}]}}`,
	`{"jsonrpc":"2.0","result":{"content":[]},"id":"gw-1"}`,
	` {"id":"gw-1", "result" : {"a":"}"} } `,
	`{"jsonrpc":"2.0","id":"gw-2","result":{}}`,
	`{"jsonrpc":"2.0","id":1,"result":{}}`,
	`{"jsonrpc":"2.0","id":"gw-1","result":[]}`,
	`{"jsonrpc":"2.0","id":"gw-1","result":null}`,
	`{"jsonrpc":"2.0","id":"gw-1"}`,
	`{"jsonrpc":"2.0","id":"gw-1","error":{"code":-32602,"message":"bad"}}`,
	`{"jsonrpc":"2.0","id":"gw-1","result":{},"error":null}`,
	`{"jsonrpc":"2.0","id":"gw-1","result":{"a":1},"result":{"b":2}}`,
	`{"jsonrpc":"2.0","ID":"gw-1","Result":{"a":1}}`,
	`{"jsonrpc":"2.0","id":"gw\u002d1","result":{}}`,
	`{"jsonrpc":"2.0","id":"gw-1","result":{}}x`,
	`[{"jsonrpc":"2.0","id":"gw-1","result":{}}]`,
	`not json`, ``,
}

// FuzzAnswer: the member walk reads every answer as encoding/json does.
func FuzzAnswer(f *testing.F) {
	for _, s := range answerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotErr := answer(raw, "gw-1")
		want, wantErr := answerDecoded(raw, "gw-1")
		if !bytes.Equal(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s:\nanswer %s, %v\nencoding/json %s, %v", raw, got, gotErr, want, wantErr)
		}
	})
}

func BenchmarkAnswer(b *testing.B) {
	raw := []byte(`{"jsonrpc":"2.0","id":"gw-1","result":{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"upstream-echo","version":"1.0.0"}},"content":[{"type":"text","text":"hello hello hello"}],"resultType":"complete"}}`)
	for _, bc := range []struct {
		name string
		f    func([]byte, string) ([]byte, error)
	}{
		{"encoding-json", func(r []byte, id string) ([]byte, error) { return answerDecoded(r, id) }},
		{"rawjson", func(r []byte, id string) ([]byte, error) { return answer(r, id) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.f(raw, "gw-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
