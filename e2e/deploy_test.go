package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// The exporter deployed as users deploy it: the image of the repository's
// Dockerfile (final stage FROM scratch, see image_test.go), loaded on every
// node, and deploy/exporter.yml, unmodified, deployed with `docker stack
// deploy` on a real swarm. Every instance is then scraped from the host on
// its manager's address, port 9675 (host mode).

const (
	// StackImage is the tag the exporter image is built and loaded as.
	StackImage = "swarm_exporter:e2e"
	// StackName is the stack the exporter is deployed as, the README's.
	StackName = "monitoring"
	// StackPort is the host-mode port of deploy/exporter.yml.
	StackPort = 9675
	// stackExporterFile is the exporter's stack file, from the e2e package.
	stackExporterFile = "../deploy/exporter.yml"
)

// ExporterStack is deploy/exporter.yml deployed on a harness swarm.
type ExporterStack struct {
	Swarm *swarmtest.Swarm
	// Name is the stack name; Service the exporter's service name in it.
	Name, Service string
	// GID is the DOCKER_GID the stack was deployed with: the group of
	// /var/run/docker.sock on a manager.
	GID string

	env        []string // of every docker CLI run: DOCKER_CONFIG, the stack variables
	probeBuilt bool
}

// StackOptions are the knobs of DeployExporterStack.
type StackOptions struct {
	// Files are compose files deployed with deploy/exporter.yml, in order
	// after it (e.g. "../deploy/monitoring.yml").
	Files []string
	// Env adds variables for the files' interpolation (NAME=value).
	Env []string
}

// DeployExporterStack builds the exporter image, loads it on every node and
// runs, on a live manager,
//
//	SWARM_EXPORTER_IMAGE=swarm_exporter:e2e DOCKER_GID=<gid> \
//	  docker stack deploy --resolve-image never -c deploy/exporter.yml [-c FILE…] monitoring
//
// then waits until an instance on every manager serves a scrape that could
// read the swarm. --resolve-image never is the only departure from the
// README's command: no registry is reachable here.
func DeployExporterStack(t *testing.T, s *swarmtest.Swarm, opts StackOptions) *ExporterStack {
	t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := imageWriteBuildContext(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.BuildImage(ctx, dir, StackImage); err != nil {
		t.Fatalf("building the exporter image: %v", err)
	}
	m := s.Managers()[0]
	// The deploy file's header: DOCKER_GID=$(stat -c %g /var/run/docker.sock)
	// on a manager, i.e. in the manager's own mount namespace, where its
	// daemon's private socket is.
	gid, err := stackSocketGID(m)
	if err != nil {
		t.Fatal(err)
	}
	st := &ExporterStack{Swarm: s, Name: StackName, Service: StackName + "_swarm-exporter", GID: gid}
	cfgDir := filepath.Join(dir, "docker-cli")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st.env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"DOCKER_CONFIG=" + cfgDir,
		"SWARM_EXPORTER_IMAGE=" + StackImage,
		"DOCKER_GID=" + gid,
	}, opts.Env...)
	args := []string{"stack", "deploy", "--resolve-image", "never", "-c", stackExporterFile}
	for _, f := range opts.Files {
		args = append(args, "-c", f)
	}
	out, err := st.Docker(ctx, append(args, StackName)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker stack deploy:\n%s", out)
	st.WaitInstances(t, s.Managers(), 90*time.Second)
	t.Logf("exporter stack: image built, loaded and deployed, %d instances serving after %v",
		len(s.Managers()), time.Since(t0).Round(time.Millisecond))
	return st
}

// stackSocketGID runs `stat -c %g /var/run/docker.sock` in n's mount
// namespace (where its dockerd's private socket lives).
func stackSocketGID(n *swarmtest.Node) (string, error) {
	pid := n.Pid()
	if pid == 0 {
		return "", fmt.Errorf("%s: dockerd is not running", n.Name)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		nsenter = "/usr/bin/nsenter"
	}
	out, err := exec.Command(nsenter, "-t", fmt.Sprint(pid), "-m", "--", "stat", "-c", "%g", "/var/run/docker.sock").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("stat of %s's /var/run/docker.sock: %v: %s", n.Name, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Docker runs the docker CLI against a live manager with the stack's
// environment (which the harness's Node.Docker cannot pass: it drops every
// DOCKER_* variable, DOCKER_GID included).
func (st *ExporterStack) Docker(ctx context.Context, args ...string) (string, error) {
	var m *swarmtest.Node
	if l, err := st.Swarm.Leader(); err == nil && l.Running() {
		m = l
	} else {
		for _, n := range st.Swarm.Managers() {
			if n.Running() {
				m = n
				break
			}
		}
	}
	if m == nil {
		return "", fmt.Errorf("no running manager")
	}
	cmd := exec.CommandContext(ctx, swarmtest.DockerCLIPath, append([]string{"-H", m.Host()}, args...)...)
	cmd.Env = st.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s on %s: %v: %s", strings.Join(args, " "), m.Name, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String() + stderr.String()), nil
}

// InstanceURL is the address of the instance on n: its IP, port 9675.
func (st *ExporterStack) InstanceURL(n *swarmtest.Node) string {
	return fmt.Sprintf("http://%s:%d", n.IP, StackPort)
}

// Instance returns the instance on n as an *Exporter, for Scrape and WaitFor
// (it is not a process of the test: Running and Logs do not apply).
func (st *ExporterStack) Instance(n *swarmtest.Node) *Exporter {
	return &Exporter{URL: st.InstanceURL(n)}
}

// LiveInstanceURLs returns the URLs of the instances that answer
// /-/healthy now, one per running manager at most, in node order. It is
// what a Prometheus scraping the managers' port 9675 would reach.
func (st *ExporterStack) LiveInstanceURLs() []string {
	var nodes []*swarmtest.Node
	for _, n := range st.Swarm.Managers() {
		if n.Running() {
			nodes = append(nodes, n)
		}
	}
	ok := make([]bool, len(nodes))
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Second}
	for i, n := range nodes {
		wg.Go(func() {
			resp, err := client.Get(st.InstanceURL(n) + "/-/healthy")
			if err == nil {
				resp.Body.Close()
				ok[i] = resp.StatusCode == http.StatusOK
			}
		})
	}
	wg.Wait()
	var urls []string
	for i, n := range nodes {
		if ok[i] {
			urls = append(urls, st.InstanceURL(n))
		}
	}
	return urls
}

// WaitInstances waits until the instance on each of nodes serves a scrape
// that could read the swarm (docker_swarm_up 1).
func (st *ExporterStack) WaitInstances(t *testing.T, nodes []*swarmtest.Node, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		e := st.Instance(n)
		for {
			m, _, err := e.Scrape(5 * time.Second)
			if err == nil && m.Is(1, "docker_swarm_up") {
				break
			}
			if time.Now().After(deadline) {
				ps, _ := st.Docker(context.Background(), "service", "ps", "--no-trunc", st.Service)
				logs, _ := st.Docker(context.Background(), "service", "logs", "--raw", st.Service)
				t.Fatalf("the exporter instance on %s (%s) does not serve within %v: last error %v\n%s\nservice ps:\n%s\nservice logs:\n%s",
					n.Name, e.URL, timeout, err, m.Summary(), ps, logs)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// stackClusterView renders what every instance says about the cluster and
// the nodes, i.e. every docker_swarm_* series but the docker_swarm_local_*
// ones (which describe the instance's own node) and the services' (which
// only the instance on the leader reads, deploy/exporter.yml passing
// --read.services=leader), one sorted line per series. Instances reading
// the same swarm at the same moment must render the same view.
func stackClusterView(m Metrics) string {
	var lines []string
	for name, mf := range m {
		if !strings.HasPrefix(name, "docker_swarm_") || strings.HasPrefix(name, "docker_swarm_local_") || stackServiceFamily(name) {
			continue
		}
		for _, s := range mf.GetMetric() {
			var ls []string
			for _, lp := range s.GetLabel() {
				ls = append(ls, lp.GetName()+"="+fmt.Sprintf("%q", lp.GetValue()))
			}
			sort.Strings(ls)
			lines = append(lines, fmt.Sprintf("%s{%s} %g", name, strings.Join(ls, ","), sampleValue(s)))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// stackServiceFamily reports whether a family is about the services: only
// the instance on the leader emits those.
func stackServiceFamily(name string) bool {
	return strings.HasPrefix(name, "docker_swarm_service_") || name == "docker_swarm_services_status" || name == "docker_swarm_status"
}

// stackReportsServices reports whether a scrape has any series about the
// services.
func stackReportsServices(m Metrics) bool {
	for name := range m {
		if stackServiceFamily(name) {
			return true
		}
	}
	return false
}

// stackScrapeAll scrapes every instance at once.
func stackScrapeAll(urls []string) ([]Metrics, []error) {
	ms := make([]Metrics, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			ms[i], _, errs[i] = (&Exporter{URL: u}).Scrape(5 * time.Second)
		})
	}
	wg.Wait()
	return ms, errs
}

// stackWaitAgreement scrapes every instance at once until each scrape
// satisfies cond, all render the same cluster view, and exactly one, the
// instance on the leader, reports the services, which satisfy services;
// then it checks that they keep agreeing for `confirm` more rounds. It
// returns the last round.
func stackWaitAgreement(t *testing.T, urls []string, timeout time.Duration, confirm int, what string, cond, services func(Metrics) bool) []Metrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		ms, errs := stackScrapeAll(urls)
		why = stackDisagreement(urls, ms, errs, cond, services)
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the instances %v do not agree on %s: %s", timeout, urls, what, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var last []Metrics
	for i := 0; i < confirm; i++ {
		time.Sleep(300 * time.Millisecond)
		ms, errs := stackScrapeAll(urls)
		if why := stackDisagreement(urls, ms, errs, cond, services); why != "" {
			t.Fatalf("the instances agreed on %s, then no longer: %s", what, why)
		}
		last = ms
	}
	return last
}

// stackDisagreement says why a round of scrapes is not an agreement on
// cond and services, "" when it is.
func stackDisagreement(urls []string, ms []Metrics, errs []error, cond, services func(Metrics) bool) string {
	onLeader := 0
	for i := range urls {
		if errs[i] != nil {
			return fmt.Sprintf("%s: %v", urls[i], errs[i])
		}
		if !cond(ms[i]) {
			return fmt.Sprintf("%s does not hold the condition:\n%s", urls[i], ms[i].Summary())
		}
		leader := ms[i].Is(1, "docker_swarm_local_node_leader")
		if reports := stackReportsServices(ms[i]); reports != leader {
			return fmt.Sprintf("%s reports the services: %v, reads through the leader: %v; want both or neither:\n%s", urls[i], reports, leader, ms[i].Summary())
		}
		if leader {
			onLeader++
			if !services(ms[i]) {
				return fmt.Sprintf("%s, on the leader, does not hold the services' condition:\n%s", urls[i], ms[i].Summary())
			}
		}
	}
	if onLeader != 1 {
		return fmt.Sprintf("%d instances read through the leader, want 1", onLeader)
	}
	first := stackClusterView(ms[0])
	for i := 1; i < len(urls); i++ {
		if v := stackClusterView(ms[i]); v != first {
			return fmt.Sprintf("%s and %s differ:\n%s", urls[0], urls[i], stackViewDiff(first, v))
		}
	}
	return ""
}

// stackViewDiff lists the lines only one of two views has.
func stackViewDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	am, bm := in(a), in(b)
	var out []string
	for l := range am {
		if !bm[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bm {
		if !am[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// stackTaskNodes returns, for the exporter service, the harness nodes that
// have a task running and meant to run, and any task placed elsewhere.
func stackTaskNodes(t *testing.T, st *ExporterStack) map[string]int {
	t.Helper()
	tasks, err := st.Swarm.Tasks(st.Service)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tk := range tasks {
		if tk.DesiredState != "running" {
			continue
		}
		n := st.Swarm.NodeByID(tk.NodeID)
		name := tk.NodeID
		if n != nil {
			name = n.Name
		}
		if tk.State == "running" {
			out[name]++
		} else {
			out[name+"("+tk.State+")"]++
		}
	}
	return out
}

// Scenario 12: the exporter deployed as a swarm service with
// deploy/exporter.yml, one instance per manager, then (ha_test.go) a
// manager that hosts an instance crashes.
func TestExporterStack(t *testing.T) {
	t0 := time.Now()
	// A 2 s dispatcher heartbeat (dockerd's default is 5 s) makes the
	// crashed manager show down after about 27 s instead of 43 s when it
	// was the leader (the new leader's dispatcher first gives every node a
	// grace period); nothing else changes.
	s := swarmtest.StartForTest(t, swarmtest.Options{DispatcherHeartbeat: 2 * time.Second})
	img := swarmtest.WorkloadImage
	for _, args := range [][]string{
		{"--name", "web", "--replicas", "4", "--label", "com.docker.stack.namespace=shop", img},
		{"--name", "agent", "--mode", "global", img, "sleep"},
	} {
		if _, err := s.CreateService(args...); err != nil {
			t.Fatal(err)
		}
	}
	st := DeployExporterStack(t, s, StackOptions{})

	t.Run("instances", func(t *testing.T) {
		stackCheckInstances(t, st)
	})
	if t.Failed() {
		return
	}
	t.Run("HA", func(t *testing.T) {
		stackCheckHA(t, st)
	})
	t.Logf("TestExporterStack took %v", time.Since(t0).Round(time.Millisecond))
}

// stackCheckInstances checks the deployed stack on a healthy swarm.
func stackCheckInstances(t *testing.T, st *ExporterStack) {
	s := st.Swarm
	managers, workers := s.Managers(), s.Workers()

	// Placement: one running task per manager, none on workers.
	placed := stackTaskNodes(t, st)
	want := map[string]int{}
	for _, m := range managers {
		want[m.Name] = 1
	}
	if fmt.Sprint(placed) != fmt.Sprint(want) {
		t.Errorf("exporter tasks by node: %v, want one running on each manager: %v", placed, want)
	}
	// Nothing answers on the workers' port 9675.
	client := &http.Client{Timeout: 2 * time.Second}
	for _, w := range workers {
		if resp, err := client.Get(st.InstanceURL(w) + "/metrics"); err == nil {
			resp.Body.Close()
			t.Errorf("worker %s answers on port %d: HTTP %d", w.Name, StackPort, resp.StatusCode)
		}
	}
	urls := st.LiveInstanceURLs()
	var wantURLs []string
	for _, m := range managers {
		wantURLs = append(wantURLs, st.InstanceURL(m))
	}
	if fmt.Sprint(urls) != fmt.Sprint(wantURLs) {
		t.Errorf("LiveInstanceURLs() = %v, want %v", urls, wantURLs)
	}

	// Every instance reads the cluster, they agree, and the cluster is OK;
	// the instance on the leader reports every service, the exporter's own
	// included, fully running, and the overall status OK.
	ms := stackWaitAgreement(t, wantURLs, 90*time.Second, 3, "a healthy cluster", func(m Metrics) bool {
		return m.Is(1, "docker_swarm_up") &&
			m.Is(1, "docker_swarm_cluster_status", "status", "ok")
	}, func(m Metrics) bool {
		return m.Is(1, "docker_swarm_status", "status", "ok") &&
			m.Is(4, "docker_swarm_service_replicas_running", "service_name", "web") &&
			m.Is(5, "docker_swarm_service_replicas_running", "service_name", "agent") &&
			m.Is(3, "docker_swarm_service_replicas_running", "service_name", st.Service)
	})

	// Each instance reports its own node; exactly one is on the leader.
	leader, err := s.Leader()
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for i, m := range managers {
		got := ms[i]
		if !got.Is(1, "docker_swarm_local_node_info", "node_id", m.ID(), "hostname", m.Hostname, "role", "manager") {
			t.Errorf("the instance on %s does not report its own node (%s, %s) in docker_swarm_local_node_info: %v",
				m.Name, m.ID(), m.Hostname, stackFamily(got, "docker_swarm_local_node_info"))
		}
		if n := len(got["docker_swarm_local_node_info"].GetMetric()); n != 1 {
			t.Errorf("the instance on %s has %d docker_swarm_local_node_info series", m.Name, n)
		}
		l, ok := got.Value("docker_swarm_local_node_leader")
		if !ok {
			t.Errorf("the instance on %s has no docker_swarm_local_node_leader", m.Name)
		}
		if l == 1 {
			leaders++
			if m != leader {
				t.Errorf("the instance on %s says it reads the leader, the leader is %s", m.Name, leader.Name)
			}
		}
		// The instance on the leader reads the services: the image is the
		// one the stack file names, with its labels. The others leave them
		// to it, and say so.
		fetched := 0.0
		if m == leader {
			fetched = 1
			if !got.Has("docker_swarm_service_info", "service_name", st.Service, "stack", StackName, "mode", "global", "image", StackImage) {
				t.Errorf("the instance on %s: no docker_swarm_service_info for %s with image %s: %v",
					m.Name, st.Service, StackImage, stackFamily(got, "docker_swarm_service_info"))
			}
		}
		if !got.Is(fetched, "swarm_exporter_last_read_fetched_services") {
			t.Errorf("the instance on %s (the leader: %v): swarm_exporter_last_read_fetched_services %s, want %g",
				m.Name, m == leader, stackFamily(got, "swarm_exporter_last_read_fetched_services"), fetched)
		}
		if !got.Has("swarm_exporter_build_info") {
			t.Errorf("the instance on %s has no swarm_exporter_build_info", m.Name)
		}
	}
	if leaders != 1 {
		t.Errorf("%d instances report docker_swarm_local_node_leader 1, want exactly 1", leaders)
	}
	t.Logf("%d instances agree; cluster view of %d series; leader %s, whose instance reports the services", len(ms), len(strings.Split(stackClusterView(ms[0]), "\n")), leader.Name)

	// deploy/monitoring.yml's Prometheus finds the instances by the swarm's
	// DNS on the stack's overlay network (deploy/prometheus.yml): every
	// instance must answer there, once.
	name := stackPrometheusTarget(t)
	scrapes, resolved := stackProbeOverlay(t, st, managers[0], name, "tasks."+st.Service)
	t.Logf("on the overlay network: %s resolves to %v, tasks.%s to %v; scrapes: %v", name, resolved[name], st.Service, resolved["tasks."+st.Service], scrapes)
	var hosts, wantHosts []string
	for _, h := range scrapes {
		hosts = append(hosts, h)
	}
	for _, m := range managers {
		wantHosts = append(wantHosts, m.Hostname)
	}
	sort.Strings(hosts)
	if fmt.Sprint(hosts) != fmt.Sprint(wantHosts) {
		t.Errorf("scraping every address of %s on the overlay network %s_monitoring (deploy/prometheus.yml's target) reached %v, want one instance per manager %v",
			name, StackName, scrapes, wantHosts)
	}

	// The image runs as the Dockerfile says: non-root, the socket's group
	// added by the stack file.
	out, err := st.Docker(context.Background(), "image", "inspect", "--format", "{{json .Config}}", StackImage)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := imageInspectConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range imageCheckConfig(cfg) {
		t.Error("image " + StackImage + ": " + e)
	}
	spec, err := st.Docker(context.Background(), "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.User}}", st.Service)
	if err != nil {
		t.Fatal(err)
	}
	if spec != "65532:"+st.GID {
		t.Errorf("service user %q, want 65532:%s", spec, st.GID)
	}
}

// stackProbeSource is a one-shot program run as a container on the stack's
// overlay network, where deploy/prometheus.yml's Prometheus runs: it
// resolves the names given as arguments (DNS of the swarm), scrapes
// :9675/metrics on every address of the first one and prints one line per
// address: "scrape IP HOSTNAME" (HOSTNAME from docker_swarm_local_node_info)
// or "error IP …", and "resolve NAME IP…" per name.
const stackProbeSource = `package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

func main() {
	hostRE := regexp.MustCompile("docker_swarm_local_node_info\\{[^}]*hostname=\"([^\"]*)\"")
	client := &http.Client{Timeout: 5 * time.Second}
	for i, name := range os.Args[1:] {
		var ips []string
		for try := 0; try < 20; try++ {
			ips, _ = net.LookupHost(name)
			if len(ips) > 0 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		sort.Strings(ips)
		fmt.Printf("resolve %s %s\n", name, strings.Join(ips, " "))
		if i > 0 {
			continue
		}
		for _, ip := range ips {
			resp, err := client.Get("http://" + net.JoinHostPort(ip, "9675") + "/metrics")
			if err != nil {
				fmt.Printf("error %s %v\n", ip, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := hostRE.FindSubmatch(b)
			if resp.StatusCode != 200 || m == nil {
				fmt.Printf("error %s HTTP %d, no docker_swarm_local_node_info\n", ip, resp.StatusCode)
				continue
			}
			fmt.Printf("scrape %s %s\n", ip, m[1])
		}
	}
}
`

// stackPrometheusTarget returns the DNS name deploy/prometheus.yml's
// swarm_exporter job resolves (dns_sd_configs names).
func stackPrometheusTarget(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*- names: \['([^']+)'\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("deploy/prometheus.yml: no dns_sd_configs names found")
	}
	return string(m[1])
}

// stackProbeImage is the tag of the probe's image.
const stackProbeImage = "swarm_exporter_probe:e2e"

// stackBuildProbe builds the probe (standard library only) and its image
// FROM scratch, loaded on every node.
func stackBuildProbe(t *testing.T, s *swarmtest.Swarm) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":     "module probe\n\ngo 1.22\n",
		"main.go":    stackProbeSource,
		"Dockerfile": "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, swarmtest.GoTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", "probe", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the overlay probe: %v\n%s", err, out)
	}
	if err := s.BuildImage(ctx, dir, stackProbeImage); err != nil {
		t.Fatal(err)
	}
}

// stackProbeOverlay runs the probe in a container attached to the stack's
// overlay network on node n and returns, per address of names[0], the
// hostname its instance reported ("error: …" when it did not answer), and
// the addresses of every name.
func stackProbeOverlay(t *testing.T, st *ExporterStack, n *swarmtest.Node, names ...string) (scrapes map[string]string, resolved map[string][]string) {
	t.Helper()
	if !st.probeBuilt {
		stackBuildProbe(t, st.Swarm)
		st.probeBuilt = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, swarmtest.DockerCLIPath, append([]string{"-H", n.Host(), "run", "--rm",
		"--network", st.Name + "_monitoring", stackProbeImage}, names...)...)
	cmd.Env = st.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the overlay probe on %s: %v\n%s", n.Name, err, out)
	}
	scrapes, resolved = map[string]string{}, map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "scrape":
			scrapes[f[1]] = f[2]
		case len(f) >= 2 && f[0] == "error":
			scrapes[f[1]] = "error: " + strings.Join(f[2:], " ")
		case len(f) >= 2 && f[0] == "resolve":
			resolved[f[1]] = f[2:]
		}
	}
	return scrapes, resolved
}

// stackFamily renders one family for failure messages.
func stackFamily(m Metrics, name string) string {
	var out []string
	for _, s := range m[name].GetMetric() {
		var ls []string
		for _, lp := range s.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		out = append(out, fmt.Sprintf("%s{%s} %g", name, strings.Join(ls, ","), sampleValue(s)))
	}
	return strings.Join(out, "; ")
}
