package audit_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/audit"
)

// BenchmarkRecord is the cost of one record, as a call pays it, on each
// kind of sink: a stream (io.Discard standing in for stderr), a file
// fsync'd per record, a file fsync'd within a 5 ms window, and the same
// chained (and signed every 1000 records).
func BenchmarkRecord(b *testing.B) {
	_, key, _ := ed25519Key()
	for _, c := range []struct {
		name string
		open func(path string) (*audit.Logger, error)
	}{
		{"stream", func(string) (*audit.Logger, error) { return audit.New(io.Discard), nil }},
		{"stream-chained", func(string) (*audit.Logger, error) {
			return audit.NewWith(io.Discard, audit.Options{Chain: true, SigningKey: key}), nil
		}},
		{"file-fsync", func(p string) (*audit.Logger, error) { return audit.Open(p) }},
		{"file-window-5ms", func(p string) (*audit.Logger, error) {
			return audit.OpenWith(p, audit.Options{FsyncWindow: 5 * time.Millisecond})
		}},
		{"file-fsync-chained", func(p string) (*audit.Logger, error) {
			return audit.OpenWith(p, audit.Options{Chain: true, SigningKey: key})
		}},
		{"file-window-5ms-chained", func(p string) (*audit.Logger, error) {
			return audit.OpenWith(p, audit.Options{Chain: true, SigningKey: key, FsyncWindow: 5 * time.Millisecond})
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			l, err := c.open(filepath.Join(b.TempDir(), "audit.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := audit.Record{TenantID: "tenant-a", Integration: "notion", Operation: audit.OpGet, Duration: time.Millisecond, Success: true}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.Record(ctx, r)
			}
		})
	}
}
