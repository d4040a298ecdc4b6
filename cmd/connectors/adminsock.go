package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/transport"
)

// AdminSocketFile is the unix socket a gateway serving the embedded store
// listens on in its data directory, mode 0600: the operator commands
// (credential, apikey, key, tenant), finding the store's file locked by
// that gateway, send their operation there instead (socketcli.go). Its
// file permission is the authorization: whoever may connect is the
// gateway's own OS user, which is checked again (SO_PEERCRED, on Linux).
const AdminSocketFile = "admin.sock"

func (c Config) adminSocketPath() string { return filepath.Join(c.DataDir, AdminSocketFile) }

// socketPeer is who is at the other end of an admin socket connection,
// put in the context of each of its requests (and only of theirs).
type socketPeer struct {
	uid     int    // -1 when the platform cannot say
	user    string // the OS user's name, or "uid:N"
	trusted bool   // the gateway's own OS user (or unknown, where the socket's mode is all there is)
}

type socketPeerKey struct{}

// socketAuth authenticates requests that came over the admin socket from
// the gateway's own OS user, as an admin named "cli:<user>" (the subject
// of their audit records, as for operator commands run on the store
// itself). It declines every other request (transport.ErrNoCredentials),
// so that the next authenticator of the chain judges it: a TCP
// connection's context never carries a socketPeer.
type socketAuth struct{}

// Authenticate implements transport.Authenticator.
func (socketAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	p, ok := r.Context().Value(socketPeerKey{}).(socketPeer)
	if !ok || !p.trusted {
		return tenants.Identity{}, transport.ErrNoCredentials
	}
	return tenants.Identity{Subject: "cli:" + p.user, Admin: true}, nil
}

// withSocketAuth puts socketAuth first in auth when serve runs on the
// embedded store, where it serves the admin socket.
func withSocketAuth(cfg Config, auth transport.Authenticator) transport.Authenticator {
	if cfg.VaultAddr != "" {
		return auth
	}
	return transport.Chain{socketAuth{}, auth}
}

// serveAdminSocket serves the operator routes of h (/tenants/…, /admin/…)
// on the admin socket in the data directory, with the embedded store; the
// returned stop closes it, removing the socket. A socket it may not make
// safely (a data directory others can write to, a file in its place that
// is not a socket, another gateway answering on it) is not made: the
// gateway serves without it, and says why.
func (m *Main) serveAdminSocket(cfg Config, h http.Handler, keys *tenants.APIKeys, log *slog.Logger) func() {
	if cfg.VaultAddr != "" {
		return func() {}
	}
	path := cfg.adminSocketPath()
	ln, err := listenAdminSocket(path)
	if err != nil {
		log.Warn("admin_socket_refused", "path", path, "error", err,
			"message", "operator commands cannot reach this gateway: they report the store locked")
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /admin/api-keys", allKeysRoute{keys})
	mux.Handle("/tenants/", h)
	mux.Handle("/admin/", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpwire.WriteError(w, r, http.StatusNotFound, "NotFound", "the admin socket serves the operator routes only (/tenants/…, /admin/…)")
	})
	srv := &http.Server{
		Handler:           socketGuard(mux, log),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, socketPeerKey{}, peerOf(c))
		},
	}
	go func() { _ = srv.Serve(ln) }()
	log.Info("admin_socket_listening", "path", path)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}
}

// socketGuard refuses a connection from another OS user than the
// gateway's (403, logged) and removes what a caller could authenticate
// with otherwise: on the socket, the peer is the identity.
func socketGuard(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(socketPeerKey{}).(socketPeer)
		if !p.trusted {
			log.Warn("admin_socket_peer_refused", "uid", p.uid)
			httpwire.WriteError(w, r, http.StatusForbidden, "Forbidden", "the admin socket serves the gateway's own OS user only")
			return
		}
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		r.Header.Del("Cookie")
		next.ServeHTTP(w, r)
	})
}

// peerOf says who is at the other end of c (SO_PEERCRED where the
// platform has it; peerUID).
func peerOf(c net.Conn) socketPeer {
	uid, ok := peerUID(c)
	if !ok {
		return socketPeer{uid: -1, user: osUserName(os.Getuid()), trusted: true}
	}
	return socketPeer{uid: uid, user: osUserName(uid), trusted: uid == os.Getuid()}
}

// osUserName is the name of the OS user uid, or "uid:N".
func osUserName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + strconv.Itoa(uid)
}

// listenAdminSocket listens on the unix socket path, mode 0600. The
// directory must be the process's own and closed to others (else another
// user could put a socket of theirs in its place). A socket already there
// is removed only if nothing answers on it (a gateway that crashed left
// it); anything else there is left, and refused.
func listenAdminSocket(path string) (net.Listener, error) {
	if err := checkPrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s exists and is not a socket: left as it is", path)
	default:
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another gateway answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Nobody else can reach it before this: the directory is closed to them.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// checkPrivateDir refuses a directory that is not this OS user's own, or
// that its group or others may write to.
func checkPrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s may be written by other users (mode %04o): chmod go-w it", dir, fi.Mode().Perm())
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s belongs to another user (uid %d)", dir, uid)
	}
	return nil
}

// checkAdminSocket refuses to send an operation to a socket that is not
// the gateway's own: it must be a socket of this OS user's, mode 0600 or
// narrower, in a directory closed to others.
func checkAdminSocket(path string) error {
	if err := checkPrivateDir(filepath.Dir(path)); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no gateway serves on it (it does not exist)")
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return errors.New("not a socket")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("mode %04o lets other users reach it", fi.Mode().Perm())
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("it belongs to another user (uid %d)", uid)
	}
	return nil
}

// gatewayAnswers reports whether a gateway answers on the admin socket of
// cfg's data directory, a socket of this OS user's: that gateway holds the
// store.
func gatewayAnswers(cfg Config) bool {
	path := cfg.adminSocketPath()
	if checkAdminSocket(path) != nil {
		return false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// allKeysRoute handles the admin socket's "GET /admin/api-keys" route:
// every tenant's API keys, as "connectors apikey list --json" prints them
// (no secret, no hash). The HTTP API lists one tenant's; an operator
// command lists or revokes any key by its ID alone.
type allKeysRoute struct{ keys *tenants.APIKeys }

func (a allKeysRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keys, err := a.keys.List(r.Context())
	if err != nil {
		httpwire.WriteError(w, r, http.StatusServiceUnavailable, "VaultError", "the store did not answer")
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, keysListing("", sortKeys(keys)))
}
