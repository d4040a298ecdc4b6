package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// VaultDevBinary is where `make vault-dev` (a dependency of `make test`)
// builds the development Vault server of testdata/vaultdev.
func VaultDevBinary() string { return filepath.Join(Root(), ".cache", "vaultdev", "vaultdev") }

// vaultStartTimeout bounds the wait for the server's first line.
const vaultStartTimeout = 60 * time.Second

// Vault starts a real HashiCorp Vault server for tb: an unsealed in-memory
// core on 127.0.0.1 with KV v2 at secret/, Transit at transit/ and AppRole
// at approle/. It returns the address (http://127.0.0.1:PORT) and the root
// token, and stops the server when tb ends. Each call starts a new, empty
// server. A missing binary fails tb with the command that builds it.
func Vault(tb testing.TB, args ...string) (addr, rootToken string) {
	tb.Helper()
	bin := VaultDevBinary()
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("the development Vault server %s is missing: run `make vault-dev` (make test does this; the first build takes minutes): %v", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"-exit-on-stdin-close"}, args...)...)
	stdin, err := cmd.StdinPipe() // closed when this process dies, so the server never outlives it
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() && stderr.Len() > 0 {
			tb.Logf("vaultdev stderr:\n%s", stderr.String())
		}
	})

	type ready struct {
		Addr  string `json:"addr"`
		Token string `json:"token"`
	}
	lines := make(chan ready, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			var r ready
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				lines <- r
			}
		}
		close(lines)
	}()
	select {
	case r, ok := <-lines:
		if !ok || r.Addr == "" || r.Token == "" {
			tb.Fatalf("the development Vault server did not start:\n%s", stderr.String())
		}
		return r.Addr, r.Token
	case <-time.After(vaultStartTimeout):
		tb.Fatalf("the development Vault server did not start within %v:\n%s", vaultStartTimeout, stderr.String())
	}
	panic("unreachable")
}

// lockedBuffer is a bytes.Buffer safe for a writing child and a reading test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
