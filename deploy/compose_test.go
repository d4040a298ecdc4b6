package deploy

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// composeService is what the test reads of a loaded Compose service.
type composeService struct {
	Profiles    []string          `json:"profiles"`
	Image       string            `json:"image"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Expose      []string          `json:"expose"`
	ReadOnly    bool              `json:"read_only"`
	DependsOn   map[string]any    `json:"depends_on"`
	Ports       []struct {
		HostIP    string `json:"host_ip"`
		Target    int    `json:"target"`
		Published string `json:"published"`
	} `json:"ports"`
	Volumes []struct {
		Source string `json:"source"`
		Target string `json:"target"`
	} `json:"volumes"`
}

// loadCompose loads docker-compose.yml with the Compose loader (schema,
// interpolation, env_file, profiles) and returns its services.
func loadCompose(t *testing.T, profiles ...string) map[string]composeService {
	t.Helper()
	out, err := helmcheck(t, repeat([]string{"compose", "docker-compose.yml"}, "-profile", profiles)...)
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	var p struct {
		Services map[string]composeService `json:"services"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p.Services
}

var replicas = []string{"gateway-1", "gateway-2", "gateway-3"}

func TestComposeReplicas(t *testing.T) {
	// Without the profile, `docker compose up` is the Vault alone, as before.
	if got := keys(loadCompose(t)); !slices.Equal(got, []string{"vault", "vault-init"}) {
		t.Errorf("services without a profile: %v, want vault and vault-init", got)
	}
	svcs := loadCompose(t, "replicas")
	vaultPort := "8200"
	var sessionKey, clusterKey string
	for _, name := range replicas {
		s, ok := svcs[name]
		if !ok {
			t.Fatalf("no service %s among %v", name, keys(svcs))
		}
		if !slices.Equal(s.Profiles, []string{"replicas"}) || !s.ReadOnly {
			t.Errorf("%s: profiles %v, read-only %v", name, s.Profiles, s.ReadOnly)
		}
		// Every replica on the one Vault, with the same keys.
		if got := s.Environment["VAULT_ADDR"]; got != "http://vault:"+vaultPort {
			t.Errorf("%s: VAULT_ADDR = %q, want the vault service", name, got)
		}
		for k, want := range map[string]*string{"CONNECTORS_BROWSER_SESSION_KEY": &sessionKey, "CONNECTORS_CLUSTER_KEY": &clusterKey} {
			v := s.Environment[k]
			if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != 32 {
				t.Errorf("%s: %s is not 32 bytes as base64", name, k)
			}
			if *want == "" {
				*want = v
			} else if v != *want {
				t.Errorf("%s: %s differs from %s's", name, k, replicas[0])
			}
		}
		if s.Environment["VAULT_TOKEN"] != "" || s.Environment["VAULT_ROLE_ID"] == "" || s.Environment["VAULT_SECRET_ID"] == "" {
			t.Errorf("%s: want AppRole credentials and no Vault token", name)
		}
		peers := strings.Split(s.Environment["CONNECTORS_CLUSTER_PEERS"], ",")
		for _, p := range replicas {
			if !slices.Contains(peers, p+":7946") {
				t.Errorf("%s: CONNECTORS_CLUSTER_PEERS %v lacks %s:7946", name, peers, p)
			}
		}
		if !slices.Equal(s.Command, []string{"serve", "--addr", "0.0.0.0:3000"}) || !slices.Contains(s.Expose, "3000") {
			t.Errorf("%s: command %v, expose %v: want serve on 0.0.0.0:3000", name, s.Command, s.Expose)
		}
		checkEnvNames(t, "docker-compose.yml's "+name, keys(s.Environment))
	}
	if _, ok := svcs["vault"]; !ok {
		t.Fatal("no vault service")
	}
	approle := svcs["vault-approle"]
	if approle.Environment["VAULT_ROLE_ID"] != svcs[replicas[0]].Environment["VAULT_ROLE_ID"] {
		t.Error("vault-approle sets another role ID than the replicas use")
	}
	checkHAProxyService(t, svcs["haproxy"])
}

// checkHAProxyService checks the compose file's HAProxy against
// deploy/haproxy/haproxy.cfg: the file mounted, the port it binds
// published, a server for each replica at the port the replicas serve,
// round robin with /readyz checks and no affinity, and a configuration
// haproxy itself accepts.
func checkHAProxyService(t *testing.T, s composeService) {
	t.Helper()
	if !slices.Equal(s.Profiles, []string{"replicas"}) {
		t.Errorf("haproxy: profiles %v", s.Profiles)
	}
	cfgPath := filepath.Join(testenv.Root(), "deploy", "haproxy", "haproxy.cfg")
	mounted := false
	for _, v := range s.Volumes {
		mounted = mounted || v.Source == cfgPath && v.Target == "/usr/local/etc/haproxy/haproxy.cfg"
	}
	if !mounted {
		t.Errorf("haproxy does not mount %s: %v", cfgPath, s.Volumes)
	}
	cfg := parseHAProxy(t, cfgPath)
	published := false
	for _, p := range s.Ports {
		published = published || ":"+strconv.Itoa(p.Target) == cfg["frontend gateway"]["bind"][0] && p.HostIP == "127.0.0.1"
	}
	if !published {
		t.Errorf("haproxy publishes %v, not its frontend's bind %v on 127.0.0.1", s.Ports, cfg["frontend gateway"]["bind"])
	}
	be := cfg["backend replicas"]
	servers := be["server"]
	var want []string
	for _, r := range replicas {
		want = append(want, r+" "+r+":3000")
	}
	if !slices.Equal(servers, want) {
		t.Errorf("haproxy.cfg servers %v, want %v", servers, want)
	}
	if be["balance"][0] != "roundrobin" || be["option"] == nil || !slices.Contains(be["option"], "httpchk GET /readyz") {
		t.Errorf("backend replicas: %v", be)
	}
	for _, never := range []string{"cookie", "stick", "stick-table", "hash-type"} {
		if be[never] != nil {
			t.Errorf("backend replicas has %s (affinity): %v", never, be[never])
		}
	}
	out, err := exec.Command(testenv.HAProxyBinary(t), "-c", "-f", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration file is valid") {
		t.Errorf("haproxy -c -f %s: %v\n%s", cfgPath, err, out)
	}
}

// parseHAProxy reads an HAProxy configuration as section → keyword →
// the rest of each line with that keyword.
func parseHAProxy(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := map[string]map[string][]string{}
	var section string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			section = strings.TrimSpace(line)
			cfg[section] = map[string][]string{}
			continue
		}
		kw, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		cfg[section][kw] = append(cfg[section][kw], strings.TrimSpace(rest))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
