package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// TestFsyncWindow: with a window, a record is written before Record
// returns and fsync'd within the window, one fsync for the records
// written meanwhile; Close fsyncs what is left.
func TestFsyncWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenWith(path, Options{FsyncWindow: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	syncs := 0
	fsync := l.out.sync
	l.out.sync = func() error { mu.Lock(); syncs++; mu.Unlock(); return fsync() }
	count := func() int { mu.Lock(); defer mu.Unlock(); return syncs }
	for i := range 5 {
		l.Record(context.Background(), Record{TenantID: "t", Operation: OpGet, Success: true})
		if b, _ := os.ReadFile(path); bytes.Count(b, []byte("\n")) != i+1 {
			t.Fatalf("record %d not written when Record returned", i+1)
		}
	}
	if n := count(); n != 0 {
		t.Errorf("%d fsyncs before the window passed", n)
	}
	time.Sleep(100 * time.Millisecond)
	if n := count(); n != 1 {
		t.Errorf("%d fsyncs for 5 records in one window, want 1", n)
	}
	l.Record(context.Background(), Record{TenantID: "t", Operation: OpGet, Success: true})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Errorf("%d fsyncs after Close, want 2 (Close syncs the last record)", n)
	}
}

// TestSyslogSink: a remote syslog destination gets one message a record,
// facility auth, at info, or warning for a failure, the record's JSON line
// (chained) as its text.
func TestSyslogSink(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := OpenWith("syslog+udp://"+pc.LocalAddr().String(), Options{Chain: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(context.Background(), Record{TenantID: "tenant-a", Integration: "notion", Operation: OpGet, Success: true})
	l.Record(context.Background(), Record{TenantID: "tenant-a", Integration: "notion", Operation: OpPut, Err: errors.New("denied")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i, want := range []string{`<38>`, `<36>`} { // auth (4) × 8 + info (6), warning (4)
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "connectors[") ||
			!strings.Contains(msg, `"tenantId":"tenant-a"`) || !strings.Contains(msg, fmt.Sprintf(`"seq":%d,`, i+1)) {
			t.Errorf("syslog message %d: %q, want %s…connectors[pid]: {…\"seq\":%d…}", i+1, msg, want, i+1)
		}
	}
	for _, bad := range []string{"syslog+http://x:1", "syslog+udp://", "syslog+tcp://host:1/path"} {
		if _, err := OpenWith(bad, Options{}); err == nil || !strings.Contains(err.Error(), "want syslog") {
			t.Errorf("OpenWith(%q): %v", bad, err)
		}
	}
}
