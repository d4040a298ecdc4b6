package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	text := strings.Repeat("0123456789", 100)
	for _, tc := range []struct {
		name      string
		r         io.Reader
		announced int64
		want      string
		err       bool
	}{
		{"exact", strings.NewReader(text), int64(len(text)), text, false},
		{"a byte at a time", iotest.OneByteReader(strings.NewReader(text)), int64(len(text)), text, false},
		{"unannounced", strings.NewReader(text), -1, text, false},
		{"announced short", strings.NewReader(text), 10, text, false},
		{"empty", strings.NewReader(""), 0, "", false},
		{"cut", io.MultiReader(strings.NewReader(text[:500]), iotest.ErrReader(io.ErrUnexpectedEOF)), int64(len(text)), text[:500], true},
	} {
		got, err := readBody(tc.r, tc.announced)
		if string(got) != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: read %d bytes, %v; want %d bytes, error %v", tc.name, len(got), err, len(tc.want), tc.err)
		}
	}
}

func TestReadAllBuffered(t *testing.T) {
	all := []byte(`{"jsonrpc":"2.0"}`)
	b := &bufferedBody{Reader: bytes.NewReader(all), all: all}
	got, err := readAll(b)
	if err != nil || &got[0] != &all[0] {
		t.Fatalf("untouched body: %q, %v; want the buffer itself", got, err)
	}
	if n, _ := b.Read(make([]byte, 1)); n != 0 {
		t.Error("the body still reads after readAll")
	}
	// Partly read already: the rest, as io.ReadAll gives it.
	b = &bufferedBody{Reader: bytes.NewReader(all), all: all}
	_, _ = b.Read(make([]byte, 5))
	if got, err := readAll(b); string(got) != string(all[5:]) || err != nil {
		t.Errorf("partly read body: %q, %v", got, err)
	}
	if got, err := readAll(iotest.ErrReader(errors.New("boom"))); len(got) != 0 || err == nil {
		t.Errorf("failing reader: %q, %v", got, err)
	}
}
