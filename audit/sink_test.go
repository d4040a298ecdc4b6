package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestFileRecordsSynced checks that a file sink fsyncs once per record,
// after the record's write.
func TestFileRecordsSynced(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if l.out.sync == nil {
		t.Fatal("a file sink does not sync")
	}
	syncs := 0
	fsync := l.out.sync
	l.out.sync = func() error { syncs++; return fsync() }
	for range 3 {
		l.Record(context.Background(), Record{TenantID: "t", Integration: "notion", Operation: OpGet, Success: true})
	}
	if syncs != 3 {
		t.Errorf("%d syncs for 3 records", syncs)
	}
}

func TestStreamsNotSynced(t *testing.T) {
	for _, dest := range []string{"", "stdout", "stderr"} {
		l, err := Open(dest)
		if err != nil {
			t.Fatal(err)
		}
		if l.out.sync != nil || l.out.closer != nil {
			t.Errorf("Open(%q) would sync or close a standard stream", dest)
		}
	}
}

// TestImports keeps audit importable by every package that touches
// credentials: it may know the identity in a context (tenants), nothing else
// of the gateway's.
func TestImports(t *testing.T) { testenv.CheckImports(t, "tenants") }

// TestSinkGroupCommitDurable: concurrent records share fsyncs, and none
// returns before an fsync that began after it was written.
func TestSinkGroupCommitDurable(t *testing.T) {
	var (
		mu       sync.Mutex
		position = map[string]int{} // record → its place in the file
		synced   int                // records written before the last fsync began
		syncs    int
	)
	s := &sink{w: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		position[string(p)] = len(position) + 1
		mu.Unlock()
		return len(p), nil
	})}
	s.sync = func() error {
		mu.Lock()
		covered := len(position)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a disk flush
		mu.Lock()
		synced, syncs = covered, syncs+1
		mu.Unlock()
		return nil
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := fmt.Sprintf("{\"w\":%d,\"i\":%d}\n", w, i)
				if _, err := s.Write([]byte(rec)); err != nil {
					t.Error(err)
				}
				mu.Lock()
				durable := synced >= position[rec]
				mu.Unlock()
				if !durable {
					t.Errorf("record %d returned before an fsync covered it", position[rec])
				}
			}
		})
	}
	wg.Wait()
	if syncs >= writers*each {
		t.Errorf("%d fsyncs for %d records: no group commit", syncs, writers*each)
	}
	t.Logf("%d records, %d fsyncs", writers*each, syncs)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
