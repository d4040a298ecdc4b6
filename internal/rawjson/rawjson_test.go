package rawjson

import (
	"bytes"
	"encoding/json"
	"testing"
)

var seeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":"x\"y\\","b":[1,{"c":"]}"}],"d":null,"e":true,"f":-1.5e+3}`,
	"{\n\t\"a\" : {\"b\":{}} ,\r\n \"c\":[[],[{}]]\n}", `{"a":1,"a":2}`, `{"\u0061":1}`, `[1]`, `"x"`, `1`, `null`,
}

// FuzzMembers: on valid JSON, Members accepts exactly the objects and
// gives each member's key and value as encoding/json reads them.
func FuzzMembers(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		var want map[string]json.RawMessage
		isObject := json.Unmarshal(data, &want) == nil && bytes.TrimSpace(data)[0] == '{'
		got := map[string][]byte{}
		dup := false
		ok := Members(data, func(k, v []byte) bool {
			var key string
			if err := json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &key); err != nil {
				t.Fatalf("key %q of %s is not a JSON string's content", k, data)
			}
			if _, seen := got[key]; seen {
				dup = true
			}
			got[key] = v
			return true
		})
		if ok != isObject {
			t.Fatalf("Members(%s) = %v, is an object: %v", data, ok, isObject)
		}
		if !ok || dup {
			return // encoding/json keeps the last of repeated keys, and folds case in structs only
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d members, encoding/json reads %d", data, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s: member %q = %s, encoding/json reads %s", data, k, got[k], v)
			}
		}
	})
}

func TestPlain(t *testing.T) {
	for s, want := range map[string]bool{`"abc"`: true, `""`: true, `"a\"b"`: false, `"a\u0062"`: false, "\"\xff\"": false, `abc`: false, `"`: false} {
		if got := Plain([]byte(s)); got != want {
			t.Errorf("Plain(%s) = %v, want %v", s, got, want)
		}
	}
}
