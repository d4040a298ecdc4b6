// Package deploy holds the gateway's deployment artefacts: the Helm chart
// (helm/connectors), the container image (Dockerfile), HAProxy's
// configuration for docker-compose.yml's "replicas" profile (haproxy) and
// that profile's shared keys (compose), a Grafana dashboard (grafana) and
// Prometheus alerting rules (prometheus). Its tests lint and render the
// chart with Helm's own packages and load the Compose file with the
// Compose loader (testdata/helmcheck, `make helmcheck`), and check both
// against what the gateway really reads; promtool checks and unit-tests the
// rules, and observability_test.go holds both to the metrics the gateway
// exports.
package deploy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// helmcheck runs the chart checker with args and returns its stdout, or
// its stderr as the error when it exits non-zero. A missing binary fails
// the test with the target that builds it.
func helmcheck(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin := filepath.Join(testenv.Root(), ".cache", "helmcheck", "helmcheck")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the chart checker %s is missing: run `make helmcheck` (make test-deps does this; the first build takes minutes): %v", bin, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.Root()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("running %s: %v", bin, err)
		}
		return stdout.Bytes(), errors.New(strings.TrimSpace(stderr.String() + "\n" + stdout.String()))
	}
	return stdout.Bytes(), nil
}

const chartDir = "deploy/helm/connectors"

// required are the values the chart cannot do without.
var required = []string{
	"-set", "vault.addr=https://vault.vault.svc:8200",
	"-set", "vault.auth.existingSecret=connectors-vault",
}

// repeat appends flag and each of vals to args.
func repeat(args []string, flag string, vals []string) []string {
	for _, v := range vals {
		args = append(args, flag, v)
	}
	return args
}

// object is one parsed Kubernetes object.
type object = map[string]any

// render renders the chart with the required values and sets, and returns
// its objects by kind and name, and NOTES.txt.
func render(t *testing.T, sets ...string) (map[string]object, string) {
	t.Helper()
	args := append([]string{"template", chartDir, "-namespace", "gw"}, required...)
	out, err := helmcheck(t, repeat(args, "-set", sets)...)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	var r struct {
		Objects []struct {
			Object object `json:"object"`
		} `json:"objects"`
		Notes string `json:"notes"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("the chart checker's output: %v", err)
	}
	objs := map[string]object{}
	for _, o := range r.Objects {
		key := str(o.Object, "kind") + "/" + str(o.Object, "metadata", "name")
		if _, dup := objs[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		objs[key] = o.Object
	}
	return objs, r.Notes
}

// at walks a parsed JSON value by map keys and slice indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := at(v, path...).(string); return s }

func TestChartLints(t *testing.T) {
	out, err := helmcheck(t, append([]string{"lint", chartDir, "-strict"}, required...)...)
	if err != nil {
		t.Fatalf("helm lint: %v", err)
	}
	t.Logf("%s", out)
	// The chart's own values name no Vault: linted bare, it says so.
	if _, err := helmcheck(t, "lint", chartDir); err == nil || !strings.Contains(err.Error(), "/vault/addr") {
		t.Fatalf("lint with no Vault address: %v, want the schema's refusal of /vault/addr", err)
	}
}

func TestChartDeployment(t *testing.T) {
	objs, notes := render(t, "replicaCount=3")
	dep := objs["Deployment/connectors"]
	if dep == nil {
		t.Fatalf("no Deployment/connectors among %v", keys(objs))
	}
	if n := at(dep, "spec", "replicas"); n != 3.0 {
		t.Errorf("replicas = %v, want 3", n)
	}
	pod := at(dep, "spec", "template", "spec")
	c := at(pod, "containers", 0)
	if str(c, "livenessProbe", "httpGet", "path") != "/healthz" || str(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Errorf("probes: liveness %v, readiness %v; want GET /healthz and GET /readyz",
			at(c, "livenessProbe", "httpGet"), at(c, "readinessProbe", "httpGet"))
	}
	// The probes' port is the one the gateway listens on.
	if port := containerPort(c, str(c, "readinessProbe", "httpGet", "port")); !slices.Contains(strs(at(c, "args")), "0.0.0.0:"+strconv.Itoa(port)) {
		t.Errorf("the probes' port %d is not the gateway's --addr in %v", port, at(c, "args"))
	}
	for _, f := range [][]any{{"securityContext", "readOnlyRootFilesystem"}, {"securityContext", "runAsNonRoot"}} {
		if at(c, f...) != true {
			t.Errorf("container %v = %v, want true", f, at(c, f...))
		}
	}
	if at(c, "securityContext", "allowPrivilegeEscalation") != false || at(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("securityContext: container %v, pod %v", at(c, "securityContext"), at(pod, "securityContext"))
	}
	if at(c, "resources", "requests", "cpu") == nil || at(c, "resources", "requests", "memory") == nil || at(c, "resources", "limits", "memory") == nil {
		t.Errorf("resources %v: want cpu and memory requests and a memory limit", at(c, "resources"))
	}
	if !strings.Contains(notes, "3 replica(s)") || !strings.Contains(notes, "connectors-peers") {
		t.Errorf("NOTES.txt:\n%s", notes)
	}
	checkSecrets(t, objs, dep, "connectors-keys", "connectors-vault")
	checkServices(t, objs, dep)
	checkEnvNames(t, "the chart's Deployment", envNames(c))
}

// checkSecrets checks that every secret reaches the gateway through a
// secretKeyRef to the Secret named: the shared keys' (generated: 32
// random bytes each) and the Vault credentials' (the operator's); none in
// plain text.
func checkSecrets(t *testing.T, objs map[string]object, dep object, keysSecret, vaultSecret string) {
	t.Helper()
	c := at(dep, "spec", "template", "spec", "containers", 0)
	want := map[string]string{
		"CONNECTORS_BROWSER_SESSION_KEY": keysSecret, "CONNECTORS_CLUSTER_KEY": keysSecret,
		"VAULT_ROLE_ID": vaultSecret, "VAULT_SECRET_ID": vaultSecret,
	}
	for _, e := range at(c, "env").([]any) {
		name, ref := str(e, "name"), at(e, "valueFrom", "secretKeyRef")
		if w, ok := want[name]; ok {
			if at(e, "value") != nil || str(ref, "name") != w {
				t.Errorf("%s = %v, want a secretKeyRef to Secret %s", name, e, w)
			}
			delete(want, name)
		}
		if plainSecret(e) {
			t.Errorf("%s is given in plain text: %v", name, e)
		}
	}
	if len(want) > 0 {
		t.Errorf("the Deployment lacks %v", keys(want))
	}
	sec := objs["Secret/"+keysSecret]
	if sec == nil {
		t.Fatalf("no generated Secret/%s among %v", keysSecret, keys(objs))
	}
	depJSON, _ := json.Marshal(dep)
	for k, v := range at(sec, "data").(map[string]any) {
		inner, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatalf("Secret data %s: %v", k, err)
		}
		if key, err := base64.StdEncoding.DecodeString(string(inner)); err != nil || len(key) != 32 {
			t.Errorf("Secret data %s = %q: want 32 bytes as base64 (%d bytes, %v)", k, inner, len(key), err)
		}
		if bytes.Contains(depJSON, []byte(v.(string))) || bytes.Contains(depJSON, inner) {
			t.Errorf("the Deployment holds the value of Secret data %s", k)
		}
	}
	if str(sec, "metadata", "annotations", "helm.sh/resource-policy") != "keep" {
		t.Errorf("the generated keys' Secret is not kept on uninstall: %v", at(sec, "metadata"))
	}
}

// checkServices checks the traffic Service, the peers' headless Service
// and the PodDisruptionBudget select the Deployment's pods, and that the
// gossip peers are the headless Service's DNS name.
func checkServices(t *testing.T, objs map[string]object, dep object) {
	t.Helper()
	labels, _ := json.Marshal(at(dep, "spec", "template", "metadata", "labels"))
	selects := func(sel any) bool {
		m, _ := sel.(map[string]any)
		var pod map[string]any
		json.Unmarshal(labels, &pod)
		for k, v := range m {
			if pod[k] != v {
				return false
			}
		}
		return len(m) > 0
	}
	svc, peers, pdb := objs["Service/connectors"], objs["Service/connectors-peers"], objs["PodDisruptionBudget/connectors"]
	if svc == nil || peers == nil || pdb == nil {
		t.Fatalf("want Service/connectors, Service/connectors-peers and PodDisruptionBudget/connectors among %v", keys(objs))
	}
	if str(svc, "spec", "type") != "ClusterIP" || !selects(at(svc, "spec", "selector")) || str(svc, "spec", "sessionAffinity") != "None" {
		t.Errorf("traffic Service: %v", at(svc, "spec"))
	}
	if str(peers, "spec", "clusterIP") != "None" || !selects(at(peers, "spec", "selector")) || at(peers, "spec", "publishNotReadyAddresses") != true {
		t.Errorf("peers Service is not headless over every pod: %v", at(peers, "spec"))
	}
	if str(pdb, "apiVersion") != "policy/v1" || at(pdb, "spec", "maxUnavailable") != 1.0 || !selects(at(pdb, "spec", "selector", "matchLabels")) {
		t.Errorf("PodDisruptionBudget: %v", pdb)
	}
	c := at(dep, "spec", "template", "spec", "containers", 0)
	gossip := int(at(peers, "spec", "ports", 0, "port").(float64))
	if got, want := env(c, "CONNECTORS_CLUSTER_PEERS"), "connectors-peers.gw.svc.cluster.local:"+strconv.Itoa(gossip); got != want {
		t.Errorf("CONNECTORS_CLUSTER_PEERS = %q, want %q", got, want)
	}
	if got := env(c, "CONNECTORS_CLUSTER_BIND"); got != "0.0.0.0:"+strconv.Itoa(gossip) || containerPort(c, "gossip-tcp") != gossip {
		t.Errorf("CONNECTORS_CLUSTER_BIND = %q, gossip port %d", got, gossip)
	}
}

func TestChartTokenAuth(t *testing.T) {
	objs, _ := render(t, "vault.auth.method=token", "sharedKeys.existingSecret=my-keys")
	c := at(objs["Deployment/connectors"], "spec", "template", "spec", "containers", 0)
	names := envNames(c)
	if !slices.Contains(names, "VAULT_TOKEN") || slices.Contains(names, "VAULT_ROLE_ID") {
		t.Errorf("token auth: env %v", names)
	}
	for _, e := range at(c, "env").([]any) {
		if str(e, "name") == "VAULT_TOKEN" && str(e, "valueFrom", "secretKeyRef", "name") != "connectors-vault" {
			t.Errorf("VAULT_TOKEN = %v", e)
		}
		if str(e, "name") == "CONNECTORS_CLUSTER_KEY" && str(e, "valueFrom", "secretKeyRef", "name") != "my-keys" {
			t.Errorf("CONNECTORS_CLUSTER_KEY = %v, want Secret my-keys", e)
		}
	}
	if _, ok := objs["Secret/connectors-keys"]; ok {
		t.Error("a keys Secret was generated beside sharedKeys.existingSecret")
	}
}

func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want string
	}{
		{"negative replicas", []string{"replicaCount=-1"}, "/replicaCount"},
		{"no replicas", []string{"replicaCount=0"}, "/replicaCount"},
		{"missing Vault secret", []string{"vault.auth.existingSecret="}, "/vault/auth/existingSecret"},
		{"unknown auth method", []string{"vault.auth.method=kubernetes"}, "/vault/auth/method"},
		{"Vault address not a URL", []string{"vault.addr=vault:8200"}, "/vault/addr"},
		{"a key misspelt", []string{"replicas=3"}, "replicas"},
		{"keys Secret not a name", []string{"sharedKeys.existingSecret=My_Keys"}, "/sharedKeys/existingSecret"},
		{"no PDB budget", []string{"podDisruptionBudget.maxUnavailable=0"}, "/podDisruptionBudget/maxUnavailable"},
		{"issuer without resource", []string{"gateway.oidcIssuer=https://idp.example.com"}, "gateway.resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmcheck(t, repeat(append([]string{"template", chartDir}, required...), "-set", tc.sets)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rendering with %v: %v, want a refusal naming %q", tc.sets, err, tc.want)
			}
		})
	}
	if _, err := helmcheck(t, append([]string{"template", chartDir, "-kube-version", "1.29.0"}, required...)...); err == nil {
		t.Error("rendered for Kubernetes 1.29, below the chart's kubeVersion (lifecycle.preStop.sleep needs 1.30)")
	}
}

// plainSecret reports whether an env entry gives a secret-looking
// variable its value in plain text.
func plainSecret(e any) bool {
	name := str(e, "name")
	secret := strings.Contains(name, "SECRET") || strings.HasSuffix(name, "_KEY") || strings.HasSuffix(name, "_TOKEN")
	return secret && at(e, "value") != nil
}

func envNames(container any) []string {
	var names []string
	for _, e := range at(container, "env").([]any) {
		names = append(names, str(e, "name"))
	}
	return names
}

func env(container any, name string) string {
	for _, e := range at(container, "env").([]any) {
		if str(e, "name") == name {
			return str(e, "value")
		}
	}
	return ""
}

func containerPort(container any, name string) int {
	for _, p := range at(container, "ports").([]any) {
		if str(p, "name") == name {
			return int(at(p, "containerPort").(float64))
		}
	}
	return 0
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// notGateway are variables the deployment sets that cmd/connectors does
// not read itself.
var notGateway = map[string]string{
	"VAULT_CACERT": "read by the Vault client library (api.DefaultConfig)",
	"GOMEMLIMIT":   "read by the Go runtime",
}

// checkEnvNames fails t for each name the gateway does not read.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	read := gatewayEnv(t)
	for _, n := range names {
		if !read[n] && notGateway[n] == "" {
			t.Errorf("%s sets %s, which cmd/connectors never reads (renamed?)", where, n)
		}
	}
}

// envName is how the gateway's environment variables are spelt.
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^GOGC$`)

// gatewayEnv returns the environment variable names cmd/connectors
// spells out: every string literal shaped like one in its non-test
// sources (getenv("X"), the names tables of config.go, m.Getenv("X")).
func gatewayEnv(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(testenv.Root(), "cmd", "connectors")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	read := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					read[s] = true
				}
			}
			return true
		})
	}
	for _, must := range []string{"VAULT_ADDR", "VAULT_ROLE_ID", "CONNECTORS_BROWSER_SESSION_KEY"} {
		if !read[must] {
			t.Fatalf("found no %s in %s: is this still where the gateway reads its environment?", must, dir)
		}
	}
	return read
}
