package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/connectors-gateway/connectors/console"
	"github.com/connectors-gateway/connectors/oauth"
)

// tenantConsole is the console at /console/: its pages call the gateway's
// API in process (transport binds it), so it is given only what its pages
// show: the public URL, whether sign-in goes through the OpenID provider,
// which integrations link through OAuth, and this binary for the stdio
// configuration.
func (m *Main) tenantConsole(cfg Config, flow *oauth.Flow, log *slog.Logger) *console.Console {
	binary, err := os.Executable()
	if err != nil {
		binary = "connectors"
	}
	// Where the stdio process finds the store: the data dir, or Vault's
	// address (its token is the operator's to add).
	env := map[string]string{}
	if cfg.VaultAddr != "" {
		env["VAULT_ADDR"] = cfg.VaultAddr
	} else if dir, err := filepath.Abs(cfg.DataDir); err == nil {
		env["CONNECTORS_DATA_DIR"] = dir
	}
	return console.New(console.Options{
		PublicURL: cfg.PublicURL,
		OIDC:      cfg.BrowserClientID != "",
		Linkable: func(integration string) bool {
			if flow == nil {
				return false
			}
			_, ok := flow.Provider(integration)
			return ok
		},
		Binary:   binary,
		StdioEnv: env,
		Logger:   log,
	})
}
