package audit

import (
	"bytes"
	"fmt"
	"io"
	"log/syslog"
	"net/url"
	"strings"
)

// A syslog destination: "syslog" (the local daemon, /dev/log), or
// "syslog+udp://host:port" / "syslog+tcp://host:port" (a remote one).
// Records go as facility auth, tag "connectors", severity info (warning
// for a failed operation), one message each: the record's JSON line.
func isSyslog(dest string) bool {
	return dest == "syslog" || strings.HasPrefix(dest, "syslog+")
}

func dialSyslog(dest string) (io.WriteCloser, error) {
	network, addr := "", ""
	if dest != "syslog" {
		u, err := url.Parse(dest)
		if err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "syslog+udp" && u.Scheme != "syslog+tcp") {
			return nil, fmt.Errorf("audit log %q: want syslog, syslog+udp://host:port or syslog+tcp://host:port", dest)
		}
		network, addr = strings.TrimPrefix(u.Scheme, "syslog+"), u.Host
	}
	w, err := syslog.Dial(network, addr, syslog.LOG_AUTH|syslog.LOG_INFO, "connectors")
	if err != nil {
		return nil, fmt.Errorf("opening audit log %s: %w", dest, err)
	}
	return syslogWriter{w}, nil
}

// syslogWriter sends each record at its severity.
type syslogWriter struct{ w *syslog.Writer }

func (s syslogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	var err error
	if bytes.Contains(p, []byte(`"level":"WARN"`)) {
		err = s.w.Warning(msg)
	} else {
		err = s.w.Info(msg)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s syslogWriter) Close() error { return s.w.Close() }
