package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	v := startVaultDev(tb, args)
	var r struct {
		Addr  string `json:"addr"`
		Token string `json:"token"`
	}
	line, err := v.readLine(vaultStartTimeout)
	if err != nil || json.Unmarshal(line, &r) != nil || r.Addr == "" || r.Token == "" {
		tb.Fatalf("the development Vault server did not start (%v):\n%s", err, v.stderr.String())
	}
	return r.Addr, r.Token
}

// vaultDev is a running development Vault server: its stdin (closed when
// this process dies, so the server never outlives it), the lines it
// prints on stdout, and its stderr.
type vaultDev struct {
	stdin  io.WriteCloser
	lines  chan []byte // stdout, a line at a time; closed at EOF
	stderr *lockedBuffer
}

// startVaultDev starts the server with args and stops it when tb ends. A
// missing binary fails tb with the command that builds it.
func startVaultDev(tb testing.TB, args []string) *vaultDev {
	tb.Helper()
	bin := VaultDevBinary()
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("the development Vault server %s is missing: run `make vault-dev` (make test does this; the first build takes minutes): %v", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"-exit-on-stdin-close"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	v := &vaultDev{stdin: stdin, lines: make(chan []byte, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = v.stderr
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
		if tb.Failed() && v.stderr.Len() > 0 {
			tb.Logf("vaultdev stderr:\n%s", v.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			v.lines <- bytes.Clone(sc.Bytes())
		}
		close(v.lines)
	}()
	return v
}

// readLine returns the server's next line on stdout.
func (v *vaultDev) readLine(timeout time.Duration) ([]byte, error) {
	select {
	case line, ok := <-v.lines:
		if !ok {
			return nil, errors.New("the server exited")
		}
		return line, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("no answer within %v", timeout)
	}
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
