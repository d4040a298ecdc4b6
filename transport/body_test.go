package transport

import (
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
