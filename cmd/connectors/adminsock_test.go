package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/transport"
)

// socketGateway is a real "connectors serve" process on the embedded
// store, and the environment its operator commands run in.
type socketGateway struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string // the data directory
	addr string // the HTTP address
	logs *lockedBuffer
	cmd  *exec.Cmd
	done chan struct{} // stderr read to its end
}

func startSocketGateway(t *testing.T) *socketGateway {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	g := &socketGateway{t: t, bin: testenv.Build(t, "./cmd/connectors"), dir: dir, logs: new(lockedBuffer), done: make(chan struct{})}
	g.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CONNECTORS_DATA_DIR=" + dir, "USER=someone-else"}
	g.cmd = exec.Command(g.bin, "serve", "--addr", "127.0.0.1:0")
	g.cmd.Env = g.env
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.cmd.Process.Kill(); <-g.done; _ = g.cmd.Wait() })
	listening := gatewayLog(stderr, g.logs, g.done)
	select {
	case g.addr = <-listening:
	case <-time.After(30 * time.Second):
		t.Fatalf("the gateway did not start\n%s", g.logs.String())
	}
	return g
}

// gatewayLog copies a serve process's log (its stderr) into logs, closing
// done at its end, and sends the address it listens on once it does.
func gatewayLog(stderr io.Reader, logs *lockedBuffer, done chan struct{}) <-chan string {
	listening := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "gateway_listening" {
				listening <- rec.Addr
			}
		}
	}()
	return listening
}

// run runs an operator command as its own process, stdin given; it
// returns stdout and stderr, failing the test when the command fails.
func (g *socketGateway) run(stdin string, args ...string) (string, string) {
	g.t.Helper()
	out, errOut, err := g.runErr(stdin, args...)
	if err != nil {
		g.t.Fatalf("connectors %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

func (g *socketGateway) runErr(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// socketClient is an HTTP client of the admin socket at path.
func socketClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// TestAdminSocketOperatorCommands: while a real "serve" holds the
// embedded store, the operator commands, each its own process, succeed
// through the gateway's admin socket (mode 0600) with the output they
// print on the store itself; the gateway does the work (a key created
// this way authenticates on its HTTP API at once, and stops when revoked);
// its audit trail names the OS user; the socket is gone when it stops.
func TestAdminSocketOperatorCommands(t *testing.T) {
	g := startSocketGateway(t)
	sock := filepath.Join(g.dir, AdminSocketFile)
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: %v %v, want a socket of mode 0600", sock, fi.Mode(), err)
	}

	const secret = "ntn_planted_socket_secret"
	start := time.Now()
	out, _ := g.run(`{"accessToken": "`+secret+`", "tokenType": "bearer"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "notion")
	if out != "stored tenant-a/notion (expires never)\n" {
		t.Errorf("credential put printed %q", out)
	}
	if elapsed := time.Since(start); elapsed > 1900*time.Millisecond {
		t.Errorf("credential put took %v: it waited for the store's lock", elapsed)
	}
	if out, _ := g.run("", "credential", "list", "--tenant", "tenant-a"); out != "notion\n" {
		t.Errorf("credential list printed %q, want notion", out)
	}
	out, _ = g.run("", "credential", "get", "--tenant", "tenant-a", "--integration", "notion")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["tenantId"] != "tenant-a" || got["tokenType"] != "bearer" || strings.Contains(out, secret) {
		t.Errorf("credential get printed %q (%v)", out, err)
	}

	key, errOut := g.run("", "apikey", "create", "--tenant", "tenant-a", "--name", "agent")
	key = strings.TrimSpace(key)
	id := keyID(key)
	if !strings.HasPrefix(key, "cgw_") || !strings.Contains(errOut, "API key "+id+" created for tenant tenant-a") {
		t.Fatalf("apikey create printed %q, %q", key, errOut)
	}
	if status := g.httpStatus(key); status != http.StatusOK {
		t.Errorf("the key made through the socket: GET integrations = %d, want 200", status)
	}
	out, _ = g.run("", "apikey", "list")
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, id) || !strings.Contains(out, "agent") || strings.Contains(out, "{") {
		t.Errorf("apikey list printed %q, want a table with %s", out, id)
	}
	if out, _ := g.run("", "apikey", "revoke", id); out != "revoked "+id+"\n" {
		t.Errorf("apikey revoke printed %q", out)
	}
	if status := g.httpStatus(key); status != http.StatusUnauthorized {
		t.Errorf("the revoked key: GET integrations = %d, want 401", status)
	}
	if out, _ := g.run("", "key", "rotate", "--tenant", "tenant-a"); out != "rotated the data key of tenant-a\n" {
		t.Errorf("key rotate printed %q", out)
	}
	if _, errOut, err := g.runErr("", "key", "rotate", "--tenant", "tenant-a", "--retire-old"); err == nil || !strings.Contains(errOut, "stop the gateway") {
		t.Errorf("key rotate --retire-old through the socket: %v %q, want a refusal saying to stop the gateway", err, errOut)
	}
	if out, _ := g.run("", "credential", "delete", "--tenant", "tenant-a", "--integration", "notion"); out != "deleted tenant-a/notion\n" {
		t.Errorf("credential delete printed %q", out)
	}
	if out, _ := g.run("", "tenant", "offboard", "--tenant", "tenant-a"); !strings.HasPrefix(out, "offboarded tenant-a: ") {
		t.Errorf("tenant offboard printed %q", out)
	}

	// The gateway's trail names the OS user (not $USER); no secret in it.
	logs := g.logs.String()
	if want := `"subject":"cli:` + osUserName(os.Getuid()) + `"`; !strings.Contains(logs, `"operation":"apikey_create"`) || !strings.Contains(logs, want) {
		t.Errorf("the gateway's audit trail has no record by %s:\n%s", want, logs)
	}
	if strings.Contains(logs, secret) || strings.Contains(logs, key) {
		t.Errorf("a secret in the gateway's log:\n%s", logs)
	}

	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-g.done
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket after the gateway stopped: %v, want it removed", err)
	}
}

// httpStatus is the status of GET /tenants/tenant-a/integrations on the
// gateway's HTTP API with key.
func (g *socketGateway) httpStatus(key string) int {
	g.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+g.addr+"/tenants/tenant-a/integrations", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminSocketHostile: requests on the socket that are not operator
// routes, or malformed, get clear errors in the API's shape; a credential
// presented on the socket grants nothing more or less (the peer is the
// identity); the socket is not on the TCP side.
func TestAdminSocketHostile(t *testing.T) {
	g := startSocketGateway(t)
	c := socketClient(filepath.Join(g.dir, AdminSocketFile))
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		errName                  string
	}{
		{name: "the MCP endpoint", method: "POST", path: "/mcp", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, status: 404, errName: "NotFound"},
		{name: "the console", method: "GET", path: "/console", status: 404, errName: "NotFound"},
		{name: "a hostile tenant ID", method: "GET", path: "/tenants/..%2Fetc/integrations", status: 400, errName: "InvalidTenantId"},
		{name: "malformed JSON", method: "POST", path: "/tenants/tenant-a/integrations/notion/credentials", body: `{"accessToken": `, status: 400, errName: "ValidationError"},
		{name: "an unknown integration", method: "POST", path: "/tenants/tenant-a/integrations/nope/credentials", body: `{"accessToken": "x"}`, status: 404, errName: "IntegrationNotFound"},
		{name: "an unknown route", method: "GET", path: "/admin/nope", status: 404},
		{name: "a bogus key beside the socket", method: "GET", path: "/tenants/tenant-a/integrations", header: []string{"Authorization", "Bearer cgw_0000000000000000_bogus"}, status: 200},
		{name: "a body that is not JSON", method: "POST", path: "/tenants/tenant-a/api-keys", header: []string{"Content-Type", "text/plain"}, body: "admin", status: 415, errName: "UnsupportedMediaType"},
		{name: "an off-boarding without its confirmation", method: "POST", path: "/admin/tenants/tenant-a/offboard", body: `{}`, status: 400, errName: "ValidationError"},
	} {
		req, _ := http.NewRequest(tc.method, "http://localhost"+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(tc.header); i += 2 {
			req.Header.Set(tc.header[i], tc.header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var body struct{ Error, Message string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.errName != "" && body.Error != tc.errName {
			t.Errorf("%s: %d %q %q, want %d %s", tc.name, resp.StatusCode, body.Error, body.Message, tc.status, tc.errName)
		}
	}
	// Over TCP, nobody is the socket's admin: no key, 401; the socket's
	// own route is not there.
	for path, want := range map[string]int{"/tenants/tenant-a/integrations": 401, "/admin/api-keys": 404} {
		resp, err := http.Get("http://" + g.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s over TCP without a key: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestAdminSocketNotOnVault: with Vault, serve makes no socket and its
// authentication is what it was (operator commands work on Vault itself).
func TestAdminSocketNotOnVault(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), VaultAddr: "http://127.0.0.1:1"}
	auth := transport.APIKeyAuth{}
	if got := withSocketAuth(cfg, auth); got != transport.Authenticator(auth) {
		t.Errorf("withSocketAuth on Vault = %#v, want the authenticator unchanged", got)
	}
	m := &Main{}
	m.serveAdminSocket(cfg, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler))()
	if _, err := os.Lstat(cfg.adminSocketPath()); !os.IsNotExist(err) {
		t.Errorf("admin socket on Vault: %v, want none", err)
	}
	if _, ok := withSocketAuth(Config{}, auth).(transport.Chain); !ok {
		t.Error("withSocketAuth on the embedded store: socketAuth not chained")
	}
}

// TestAdminSocketListen: a stale socket (nothing answers) is replaced; a
// live one, a file that is not a socket, or a directory other users may
// write to are refused and left as they are; the operator side refuses a
// socket others may reach.
func TestAdminSocketListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AdminSocketFile)

	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err := listenAdminSocket(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v, want it replaced", err)
	}
	if fi, _ := os.Lstat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if err := checkAdminSocket(path); err != nil {
		t.Errorf("checkAdminSocket of the gateway's own socket: %v", err)
	}
	if _, err := listenAdminSocket(path); err == nil || !strings.Contains(err.Error(), "another gateway answers") {
		t.Errorf("over a live socket: %v, want a refusal", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := checkAdminSocket(path); err == nil || !strings.Contains(err.Error(), "other users") {
		t.Errorf("checkAdminSocket of a socket of mode 0666: %v, want a refusal", err)
	}
	ln.Close()

	if err := os.WriteFile(path, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Error("the regular file was touched")
	}

	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(filepath.Join(open, AdminSocketFile)); err == nil || !strings.Contains(err.Error(), "written by other users") {
		t.Errorf("in a directory of mode 0777: %v, want a refusal", err)
	}
	if err := checkAdminSocket(filepath.Join(open, AdminSocketFile)); err == nil {
		t.Error("checkAdminSocket in a directory of mode 0777: accepted")
	}
}

// TestAdminSocketPeer: a connection from another OS user is refused
// (403) before any route, and socketAuth makes nobody an admin without
// a trusted peer on the socket.
func TestAdminSocketPeer(t *testing.T) {
	reached := false
	h := socketGuard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name   string
		peer   *socketPeer
		status int
	}{
		{"another OS user", &socketPeer{uid: os.Getuid() + 1, user: "mallory"}, 403},
		{"no peer (not the socket)", nil, 403},
		{"the gateway's own user", &socketPeer{uid: os.Getuid(), user: "me", trusted: true}, 200},
	} {
		reached = false
		req := httptest.NewRequest("GET", "/tenants/tenant-a/integrations", nil)
		if tc.peer != nil {
			req = req.WithContext(context.WithValue(req.Context(), socketPeerKey{}, *tc.peer))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || reached != (tc.status == 200) {
			t.Errorf("%s: %d (handler reached: %v), want %d", tc.name, rec.Code, reached, tc.status)
		}
		id, err := socketAuth{}.Authenticate(req)
		if tc.status == 200 && (err != nil || !id.Admin || id.Subject != "cli:me") {
			t.Errorf("%s: socketAuth = %+v, %v, want admin cli:me", tc.name, id, err)
		}
		if tc.status != 200 && (err == nil || id.Admin) {
			t.Errorf("%s: socketAuth = %+v, %v, want it declined", tc.name, id, err)
		}
	}
	if p := peerOf(mustUnixPair(t)); p.uid != os.Getuid() || !p.trusted {
		t.Errorf("peerOf a connection of this process = %+v, want uid %d, trusted", p, os.Getuid())
	}
}

// mustUnixPair is one end of a unix socket connection made by this process.
func mustUnixPair(t *testing.T) net.Conn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		if c, err := net.Dial("unix", path); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAdminSocketOtherUser: another OS user who reaches the socket all
// the same (its mode widened, its directories opened) is refused by the
// peer check (SO_PEERCRED), 403, and nothing is done. It needs root, to
// run curl as nobody.
func TestAdminSocketOtherUser(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if os.Getuid() != 0 || err != nil {
		t.Skip("needs root and curl, to connect as another OS user")
	}
	g := startSocketGateway(t)
	sock := filepath.Join(g.dir, AdminSocketFile)
	for d := g.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(curl, "-s", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", "POST",
		"-H", "Content-Type: application/json", "-d", `{"admin": true}`, "http://localhost/tenants/ops/api-keys")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl as nobody: %v %s", err, out)
	}
	if !strings.HasSuffix(string(out), "\n403") || !strings.Contains(string(out), "own OS user only") {
		t.Errorf("another OS user on the socket: %s, want 403", out)
	}
	if strings.Contains(g.logs.String(), `"operation":"apikey_create"`) || !strings.Contains(g.logs.String(), "admin_socket_peer_refused") {
		t.Errorf("after another user's request:\n%s", g.logs.String())
	}
}
