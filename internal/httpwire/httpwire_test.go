package httpwire

import (
	"errors"
	"testing"
	"testing/iotest"
)

func TestReadAllBuffered(t *testing.T) {
	all := []byte(`{"jsonrpc":"2.0"}`)
	b := NewBody(all)
	got, err := ReadAll(b)
	if err != nil || &got[0] != &all[0] {
		t.Fatalf("untouched body: %q, %v; want the buffer itself", got, err)
	}
	if n, _ := b.Read(make([]byte, 1)); n != 0 {
		t.Error("the body still reads after ReadAll")
	}
	// Partly read already: the rest, as io.ReadAll gives it.
	b = NewBody(all)
	_, _ = b.Read(make([]byte, 5))
	if got, err := ReadAll(b); string(got) != string(all[5:]) || err != nil {
		t.Errorf("partly read body: %q, %v", got, err)
	}
	if got, err := ReadAll(iotest.ErrReader(errors.New("boom"))); len(got) != 0 || err == nil {
		t.Errorf("failing reader: %q, %v", got, err)
	}
}
