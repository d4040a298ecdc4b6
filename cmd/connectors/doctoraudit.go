package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// doctorAudit checks where serve's audit trail goes and the key that signs
// its checkpoints, as openAudit and auditOptions open them (observe.go,
// auditcmd.go), making neither.
func (m *Main) doctorAudit(r *doctorReport, cfg Config) {
	if _, err := auditFsyncWindow(cfg.AuditFsync); err != nil {
		r.fail("audit", err.Error()+" (serve refuses to start)", `set CONNECTORS_AUDIT_FSYNC to "always" or a window such as "5ms"`)
	}
	doctorAuditLog(r, cfg.AuditLog)
	path := cfg.AuditSigningKey
	if path == "" {
		if cfg.VaultAddr != "" {
			r.warn("audit.signing_key", "CONNECTORS_AUDIT_SIGNING_KEY is not set: with Vault the trail's checkpoints are unsigned",
				"set CONNECTORS_AUDIT_SIGNING_KEY to a file for the key (made on first use)")
			return
		}
		path = filepath.Join(cfg.DataDir, AuditKeyFile)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.ok("audit.signing_key", "%s does not exist yet: serve makes it (mode 0600) on first use", path)
	case err != nil:
		r.fail("audit.signing_key", err.Error(), "make "+path+" readable by the gateway's user only")
	case fi.Mode().Perm()&0o077 != 0:
		r.fail("audit.signing_key", fmt.Sprintf("%s has mode %04o: whoever reads it can sign a rewritten trail", path, fi.Mode().Perm()), "chmod 600 "+path)
	default:
		if _, err := readSigningKey(path); err != nil { // its error never quotes the file
			r.fail("audit.signing_key", err.Error(), "restore the key from your backup, or move it away to have a new one made (older checkpoints then verify only with the old public key)")
			return
		}
		r.ok("audit.signing_key", "%s, mode %04o", path, fi.Mode().Perm())
	}
}

// doctorAuditLog checks a file destination of the trail can be appended
// to, or made in its directory.
func doctorAuditLog(r *doctorReport, dest string) {
	switch {
	case dest == "" || dest == "stderr" || dest == "stdout" || strings.HasPrefix(dest, "syslog"):
		r.ok("audit.log", "to %s", cmp.Or(dest, "stderr"))
		return
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(filepath.Dir(dest)); derr != nil {
			r.fail("audit.log", "CONNECTORS_AUDIT_LOG "+dest+": its directory does not exist (serve refuses to start)", "mkdir -p "+filepath.Dir(dest))
			return
		}
		r.ok("audit.log", "%s does not exist yet: serve makes it (mode 0600)", dest)
		return
	}
	if err != nil {
		r.fail("audit.log", "CONNECTORS_AUDIT_LOG: "+err.Error()+" (serve refuses to start)", "let the gateway's user append to "+dest)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		r.warn("audit.log", fmt.Sprintf("%s has mode %04o: others may read who used which credential", dest, fi.Mode().Perm()), "chmod 600 "+dest)
		return
	}
	r.ok("audit.log", "%s can be appended to", dest)
}
