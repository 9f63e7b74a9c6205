package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (`getconf CLK_TCK`; 100 on Linux on every common architecture).
const clockTicks = 100

// cpuSeconds returns the CPU time (user + system) a process has used.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return (utime + stime) / clockTicks, nil
}

// cpu returns the CPU time of every manager's dockerd, by node name.
func (b *bench) cpu() (map[string]float64, error) {
	out := map[string]float64{}
	for _, m := range b.s.Managers() {
		c, err := cpuSeconds(m.Pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		out[m.Name] = c
	}
	return out, nil
}

// cpuWindow measures the managers' CPU time over f, net of their idle
// rate: what f cost them.
func (b *bench) cpuWindow(idle map[string]float64, f func() error) (map[string]float64, time.Duration, error) {
	c0, err := b.cpu()
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	if err := f(); err != nil {
		return nil, 0, err
	}
	c1, err := b.cpu()
	elapsed := time.Since(t0)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]float64{}
	for name := range c1 {
		out[name] = c1[name] - c0[name] - idle[name]*elapsed.Seconds()
	}
	return out, elapsed, nil
}

// idleRates measures each manager's CPU per second with nothing reading.
func (b *bench) idleRates() (map[string]float64, error) {
	zero := map[string]float64{}
	used, elapsed, err := b.cpuWindow(zero, func() error { time.Sleep(b.o.idle); return nil })
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, c := range used {
		out[name] = c / elapsed.Seconds()
	}
	return out, nil
}

// floor runs curl over the four answers of a read, one after the other on
// one connection or all four at once, and returns the median over runs of
// the time curl reports: the sum of the four, or the longest.
func (b *bench) floor(n *swarmtest.Node, parallel bool) (time.Duration, error) {
	paths := readPaths(b.api)
	var runs []time.Duration
	for range b.o.floorRuns {
		args := []string{"-s", "-f", "--unix-socket", n.Socket, "-w", "%{time_total}\n"}
		if parallel {
			args = append(args, "--parallel", "--parallel-immediate", "--parallel-max", "4")
		}
		for _, ep := range []string{"info", "nodes", "services", "tasks"} {
			args = append(args, "-o", "/dev/null", "http://docker"+paths[ep])
		}
		out, err := exec.Command("curl", args...).Output()
		if err != nil {
			return 0, fmt.Errorf("curl %v: %w", args, err)
		}
		var total, longest float64
		for _, l := range strings.Fields(string(out)) {
			v, err := strconv.ParseFloat(l, 64)
			if err != nil {
				return 0, fmt.Errorf("curl said %q", out)
			}
			total += v
			longest = max(longest, v)
		}
		if parallel {
			total = longest
		}
		runs = append(runs, time.Duration(total*float64(time.Second)))
	}
	return percentile(runs, 50), nil
}

// proxy sits between an exporter and a daemon's socket and counts the
// requests by endpoint.
type proxy struct {
	sock string
	srv  *http.Server
	mu   sync.Mutex
	n    map[string]int
}

var versioned = regexp.MustCompile(`^(/v[0-9]+\.[0-9]+)?/`)

func startProxy(dir, name, target string) (*proxy, error) {
	p := &proxy{sock: filepath.Join(dir, name+".sock"), n: map[string]int{}}
	_ = os.Remove(p.sock)
	l, err := net.Listen("unix", p.sock)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
			r.Out.Host = "docker"
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", target)
			},
			MaxIdleConnsPerHost: 16,
		},
		FlushInterval: -1,
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep := strings.TrimPrefix(versioned.ReplaceAllString(r.URL.Path, "/"), "/")
		p.mu.Lock()
		p.n[ep]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	return p, nil
}

func (p *proxy) reset() {
	p.mu.Lock()
	clear(p.n)
	p.mu.Unlock()
}

func (p *proxy) count(ep string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[ep]
}

func (p *proxy) close() {
	p.srv.Close()
	os.Remove(p.sock)
}

// exporter is a swarm_exporter process reading a manager through a proxy.
type exporter struct {
	node  *swarmtest.Node
	cmd   *exec.Cmd
	url   string
	proxy *proxy
	logs  *bytes.Buffer
}

func (b *bench) startExporter(n *swarmtest.Node, args ...string) (*exporter, error) {
	p, err := startProxy(b.dir, "proxy-"+n.Name, n.Socket)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.close()
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	e := &exporter{node: n, url: "http://" + addr, proxy: p, logs: &bytes.Buffer{}}
	e.cmd = exec.Command(b.bin, append([]string{"--web.listen-address=" + addr, "--docker.host=unix://" + p.sock,
		"--docker.timeout=30s", "--log.level=info"}, args...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		p.close()
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.url + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("the exporter on %s does not start: %s", n.Name, e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e, nil
}

func (e *exporter) stop() {
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	e.proxy.close()
}

// prometheusAccept is what Prometheus 2.42 sends.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

var scrapeClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}

// scrape scrapes as Prometheus does (gzip, its Accept header and scrape
// timeout) and returns the time to the last byte; a scrape that is not an
// HTTP 200 with docker_swarm_up 1 is an error.
func scrape(u string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/metrics", nil)
	req.Header.Set("Accept", prometheusAccept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	t0 := time.Now()
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return took, err
	}
	if resp.StatusCode != http.StatusOK {
		return took, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return took, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return took, err
		}
	}
	if !bytes.Contains(body, []byte("\ndocker_swarm_up 1\n")) {
		return took, fmt.Errorf("docker_swarm_up is not 1")
	}
	return took, nil
}

// targetResult holds what reading through one manager costs.
type targetResult struct {
	node                string
	leader              bool
	floorSeq, floorPar  time.Duration
	p50, p95            time.Duration
	leaderCPU, localCPU float64 // per read; localCPU is the target's own when it is a follower
	requestsPerRead     float64
}

// measureTarget measures the floor, the scrapes and the CPU per read of an
// exporter with the default flags (every scrape reads everything) reading
// through n.
func (b *bench) measureTarget(n *swarmtest.Node, idle map[string]float64) (targetResult, error) {
	res := targetResult{node: n.Name, leader: n == b.leader}
	logf("%d services: floor and reads through %s", b.services, n.Name)
	var err error
	if res.floorSeq, err = b.floor(n, false); err != nil {
		return res, err
	}
	if res.floorPar, err = b.floor(n, true); err != nil {
		return res, err
	}
	e, err := b.startExporter(n)
	if err != nil {
		return res, err
	}
	defer e.stop()
	for range 2 { // warm-up: connections, buffers sized for the swarm
		if _, err := scrape(e.url, 30*time.Second); err != nil {
			return res, fmt.Errorf("warm-up scrape through %s: %w", n.Name, err)
		}
	}
	e.proxy.reset()
	var took []time.Duration
	used, _, err := b.cpuWindow(idle, func() error {
		for range b.o.reads {
			d, err := scrape(e.url, 30*time.Second)
			if err != nil {
				return fmt.Errorf("scrape through %s: %w", n.Name, err)
			}
			took = append(took, d)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.p50, res.p95 = percentile(took, 50), percentile(took, 95)
	res.leaderCPU = used[b.leader.Name] / float64(b.o.reads)
	res.localCPU = used[n.Name] / float64(b.o.reads)
	res.requestsPerRead = float64(e.proxy.count("tasks")) / float64(b.o.reads)
	return res, nil
}

// nmResult is the leader's load with N instances × M scrapers, with the
// default flags (before) and with deploy/exporter.yml's --read.services=leader
// and --read.max-age (after).
type nmResult struct {
	n, m          int
	before, after modeResult
}

type modeResult struct {
	leaderCPU, othersCPU   float64 // CPU-seconds per interval
	tasks, services, nodes float64 // requests per interval, all instances
	p50, p95               time.Duration
	scrapes, failed        int
	failures               []string
}

func (b *bench) measureNM(n, m int, idle map[string]float64) (nmResult, error) {
	res := nmResult{n: n, m: m}
	var err error
	logf("%d services: %d instance(s) × %d scraper(s), default flags", b.services, n, m)
	if res.before, err = b.runNM(n, m, idle, nil); err != nil {
		return res, err
	}
	after := []string{"--read.services=leader", "--read.max-age=" + b.o.maxAge.String()}
	logf("%d services: %d instance(s) × %d scraper(s), %s", b.services, n, m, strings.Join(after, " "))
	if res.after, err = b.runNM(n, m, idle, after); err != nil {
		return res, err
	}
	return res, nil
}

func (b *bench) runNM(n, m int, idle map[string]float64, flags []string) (modeResult, error) {
	var res modeResult
	nodes := []*swarmtest.Node{b.leader}
	if n > 1 {
		nodes = b.s.Managers()[:n]
	}
	var exps []*exporter
	defer func() {
		for _, e := range exps {
			e.stop()
		}
	}()
	for _, node := range nodes {
		e, err := b.startExporter(node, flags...)
		if err != nil {
			return res, err
		}
		exps = append(exps, e)
	}
	// Warm-up: a scrape of each, then an interval, so that every instance
	// knows whether it is on the leader and no reuse is left over.
	for _, e := range exps {
		if _, err := scrape(e.url, 30*time.Second); err != nil {
			return res, fmt.Errorf("warm-up scrape of %s: %w", e.node.Name, err)
		}
	}
	time.Sleep(b.o.interval)
	for _, e := range exps {
		e.proxy.reset()
	}

	var (
		mu   sync.Mutex
		took []time.Duration
	)
	timeout := min(10*time.Second, b.o.interval)
	used, _, err := b.cpuWindow(idle, func() error {
		var wg sync.WaitGroup
		total := n * m
		start := time.Now()
		for i, e := range exps {
			for j := range m {
				// Prometheus spreads its targets over the interval; so do
				// the scrapers, each at its own offset.
				offset := b.o.interval * time.Duration(i*m+j) / time.Duration(total)
				wg.Go(func() {
					for r := range b.o.rounds {
						time.Sleep(time.Until(start.Add(offset + time.Duration(r)*b.o.interval)))
						d, err := scrape(e.url, timeout)
						mu.Lock()
						res.scrapes++
						if err != nil {
							res.failed++
							if len(res.failures) < 5 {
								res.failures = append(res.failures, fmt.Sprintf("%s: %v", e.node.Name, err))
							}
						} else {
							took = append(took, d)
						}
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		// The window ends where the last interval does.
		time.Sleep(time.Until(start.Add(time.Duration(b.o.rounds) * b.o.interval)))
		return nil
	})
	if err != nil {
		return res, err
	}
	rounds := float64(b.o.rounds)
	res.leaderCPU = used[b.leader.Name] / rounds
	for name, c := range used {
		if name != b.leader.Name {
			res.othersCPU += c / rounds
		}
	}
	for _, e := range exps {
		res.tasks += float64(e.proxy.count("tasks")) / rounds
		res.services += float64(e.proxy.count("services")) / rounds
		res.nodes += float64(e.proxy.count("nodes")) / rounds
	}
	res.p50, res.p95 = percentile(took, 50), percentile(took, 95)
	if res.failed > 0 {
		logf("  %d of %d scrapes failed: %v", res.failed, res.scrapes, res.failures)
	}
	return res, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}
