// Command swarmbench measures the exporter against synthetic swarms, each
// process on its own as in production:
//
//	go run ./tools/swarmbench                 # every size
//	go run ./tools/swarmbench -sizes m -n 60  # the target size only
//
// For each size it builds and starts tools/fakeswarm (the Docker API) and
// the exporter on loopback, measures the raw floor (curl fetching /info,
// /nodes, /services?status=true and the current tasks, before and after
// the scrapes), runs sequential scrapes, plain and gzip-compressed (what
// Prometheus asks for), then waves of concurrent scrapes, and prints one
// table row per size beside the scale targets, marked met or not at
// the target size, then where the time goes and the growth table: time and
// memory per megabyte the daemon returns. docs/benchmarks.md explains it.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/bench"
	"github.com/swarm-exporter/swarm_exporter/internal/fakedocker"
)

// The scale targets (docs/benchmarks.md), at the target size.
const (
	maxRequests  = 5
	maxP50Floors = 5.0
	maxP95Floors = 8.0
	maxRSS       = 200 << 20
	maxSeries    = 70000
)

type options struct {
	sizes       []bench.Size
	scrapes     int
	floorRuns   int
	concurrent  int
	waves       int
	exporter    []string
	exporterBin string
}

func main() {
	var (
		o     options
		sizes = flag.String("sizes", "xs,s,m,l,wide,tall", "comma-separated sizes to run (see internal/bench)")
		extra = flag.String("exporter-args", "", "extra arguments for the exporter, space-separated")
		bin   = flag.String("exporter", "", "an exporter binary to measure instead of building this checkout's (e.g. an older build, for a before/after)")
	)
	flag.IntVar(&o.scrapes, "n", 40, "sequential scrapes per size, plain and gzip each")
	flag.IntVar(&o.floorRuns, "floor-runs", 15, "curl runs for the raw floor, before and again after the scrapes (the median of all is kept)")
	flag.IntVar(&o.concurrent, "concurrent", 10, "scrapes per concurrent wave")
	flag.IntVar(&o.waves, "waves", 3, "concurrent waves per size (the worst is kept)")
	flag.Parse()
	for _, name := range strings.Split(*sizes, ",") {
		s, ok := bench.Lookup(strings.TrimSpace(name))
		if !ok {
			fatal(fmt.Errorf("unknown size %q", name))
		}
		o.sizes = append(o.sizes, s)
	}
	o.exporter = strings.Fields(*extra)
	o.exporterBin = *bin
	if _, err := exec.LookPath("curl"); err != nil {
		fatal(errors.New("curl is needed for the raw floor: apt-get install curl"))
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "swarmbench:", err)
	os.Exit(1)
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "swarmbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exporterBin := o.exporterBin
	fakeBin := filepath.Join(dir, "fakeswarm")
	if exporterBin == "" {
		exporterBin = filepath.Join(dir, "swarm_exporter")
		fmt.Fprintln(os.Stderr, "building the exporter")
		if err := goBuild(exporterBin, "."); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "building tools/fakeswarm")
	if err := goBuild(fakeBin, "./tools/fakeswarm"); err != nil {
		return err
	}
	printMachine()

	var results []result
	for _, s := range o.sizes {
		fmt.Fprintf(os.Stderr, "size %s\n", s)
		r, err := measure(o, s, exporterBin, fakeBin)
		if err != nil {
			return fmt.Errorf("size %s: %w", s.Name, err)
		}
		results = append(results, r)
	}
	printTable(results)
	printTimes(results)
	printGrowth(results)
	fmt.Printf("\nload average at the end: %s\n", loadavg())
	return nil
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func printMachine() {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	goVersion, _ := exec.Command("go", "version").Output()
	fmt.Printf("machine: %s, %d cores, %s; %s; load average %s\n", cpu, numCPU(), mem, strings.TrimSpace(string(goVersion)), loadavg())
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

// result is one size's row.
type result struct {
	size        bench.Size
	bytes       int64 // response bytes per scrape
	requests    float64
	waveMax     int // requests made by the worst concurrent wave
	floor       time.Duration
	p50, p95    time.Duration
	gzP50       time.Duration
	gzP95       time.Duration
	rss         int64 // VmHWM at the end
	seqRSS      int64 // VmHWM before the concurrent waves
	idleRSS     int64 // VmRSS before the first read
	series      int
	expoBytes   int
	gzBytes     int
	perTaskLbls []string // labels that would make series per task, if any
	mean        time.Duration
	read        map[string]time.Duration // mean request time by endpoint, decoding included
}

func measure(o options, s bench.Size, exporterBin, fakeBin string) (result, error) {
	res := result{size: s}
	fake, host, err := startFake(fakeBin, s)
	if err != nil {
		return res, err
	}
	defer stop(fake)
	base := "http://" + strings.TrimPrefix(host, "tcp://")

	addr, err := freePort()
	if err != nil {
		return res, err
	}
	args := append([]string{"--docker.host=" + host, "--web.listen-address=" + addr, "--log.level=warn"}, o.exporter...)
	exp := exec.Command(exporterBin, args...)
	exp.Stderr = os.Stderr
	if err := exp.Start(); err != nil {
		return res, err
	}
	defer stop(exp)
	metrics := "http://" + addr + "/metrics"
	if err := waitHTTP("http://" + addr + "/-/healthy"); err != nil {
		return res, err
	}
	res.idleRSS = procStatus(exp.Process.Pid, "VmRSS")

	// Warm up: the start-up read and two scrapes, not counted.
	for range 3 {
		if _, _, err := scrape(metrics, false); err != nil {
			return res, err
		}
	}

	// The floor is measured before and after the scrapes, and the median of
	// both kept: a moment of load on the machine then moves it less.
	floors, err := floor(base, o.floorRuns)
	if err != nil {
		return res, err
	}

	if err := post(base + fakedocker.ResetPath); err != nil {
		return res, err
	}
	_, before, err := scrape(metrics, false)
	if err != nil {
		return res, err
	}
	var plain, gz []time.Duration
	var body []byte
	for range o.scrapes {
		d, b, err := scrape(metrics, false)
		if err != nil {
			return res, err
		}
		plain = append(plain, d)
		body = b
	}
	st, err := stats(base)
	if err != nil {
		return res, err
	}
	// The warm-up scrape above counts too.
	res.requests = float64(total(st.Requests)) / float64(o.scrapes+1)
	res.bytes = total64(st.Bytes) / int64(o.scrapes+1)
	res.read = readTimes(before, body)
	for _, d := range plain {
		res.mean += d / time.Duration(len(plain))
	}
	res.expoBytes = len(body)
	res.series, res.perTaskLbls = countSeries(body)
	if res.gzBytes, err = compressedSize(metrics); err != nil {
		return res, err
	}
	for range o.scrapes {
		d, b, err := scrape(metrics, true)
		if err != nil {
			return res, err
		}
		gz = append(gz, d)
		if n, _ := countSeries(b); n != res.series {
			return res, fmt.Errorf("the gzip exposition has %d series, the plain one %d", n, res.series)
		}
	}
	after, err := floor(base, o.floorRuns)
	if err != nil {
		return res, err
	}
	res.floor = percentile(append(floors, after...), 50)
	res.p50, res.p95 = percentile(plain, 50), percentile(plain, 95)
	res.gzP50, res.gzP95 = percentile(gz, 50), percentile(gz, 95)

	res.seqRSS = procStatus(exp.Process.Pid, "VmHWM")

	// A first wave opens the connections, so that the waves measured start
	// together instead of one connection at a time.
	if _, err := wave(base, metrics, o.concurrent); err != nil {
		return res, err
	}
	for range o.waves {
		n, err := wave(base, metrics, o.concurrent)
		if err != nil {
			return res, err
		}
		res.waveMax = max(res.waveMax, n)
	}
	res.rss = procStatus(exp.Process.Pid, "VmHWM")
	return res, nil
}

func startFake(bin string, s bench.Size) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, "-size", s.Name)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(cmd)
		return nil, "", fmt.Errorf("fakeswarm did not start: %w", err)
	}
	fmt.Fprint(os.Stderr, "  ", line)
	for _, f := range strings.Fields(line) {
		if h, ok := strings.CutPrefix(f, "host="); ok {
			return cmd, h, nil
		}
	}
	stop(cmd)
	return nil, "", fmt.Errorf("fakeswarm said %q", line)
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", u)
}

// client never asks for compression on its own: gzip is asked for
// explicitly and the compressed bytes are what is timed, as Prometheus
// receives them.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}

// scrape fetches the metrics, as Prometheus does, and returns the time to
// the last byte and the body (decompressed).
func scrape(u string, gz bool) (time.Duration, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("scrape: HTTP %d: %.200s", resp.StatusCode, body)
	}
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			return 0, nil, errors.New("the exporter ignored Accept-Encoding: gzip")
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return 0, nil, fmt.Errorf("gunzip: %w", err)
		}
	}
	if !bytes.Contains(body, []byte("docker_swarm_up 1")) {
		return 0, nil, errors.New("the exporter could not read the swarm")
	}
	return took, body, nil
}

// floor returns the times curl takes to fetch what one read fetches, one
// request after the other over one connection, as reported by curl.
func floor(base string, runs int) ([]time.Duration, error) {
	filters := url.QueryEscape(`{"desired-state":["running","ready","complete"]}`)
	urls := []string{
		base + "/v1.41/info",
		base + "/v1.41/nodes",
		base + "/v1.41/services?status=true",
		base + "/v1.41/tasks?filters=" + filters,
	}
	var times []time.Duration
	for range runs {
		args := []string{"-sS", "--fail", "-w", "%{time_total}\n"}
		for _, u := range urls {
			args = append(args, "-o", "/dev/null", u)
		}
		out, err := exec.Command("curl", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("curl: %w", err)
		}
		var sum float64
		for _, f := range strings.Fields(string(out)) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("curl said %q", out)
			}
			sum += v
		}
		times = append(times, time.Duration(sum*float64(time.Second)))
	}
	return times, nil
}

// wave sends n scrapes at once and returns the requests they made.
func wave(base, metrics string, n int) (int, error) {
	if err := post(base + fakedocker.ResetPath); err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, n)
	)
	for range n {
		wg.Go(func() {
			<-start
			if _, _, err := scrape(metrics, false); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	st, err := stats(base)
	if err != nil {
		return 0, err
	}
	return total(st.Requests), nil
}

// readTimes returns the mean time of the requests of each endpoint between
// two expositions, from the exporter's own request-duration histograms:
// from sending a request to having decoded its whole response.
func readTimes(before, after []byte) map[string]time.Duration {
	sums := func(b []byte) (sum map[string]float64, count map[string]float64) {
		sum, count = map[string]float64{}, map[string]float64{}
		for _, l := range strings.Split(string(b), "\n") {
			for suffix, m := range map[string]map[string]float64{"_sum": sum, "_count": count} {
				prefix := "swarm_exporter_docker_request_duration_seconds" + suffix + `{endpoint="`
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					ep, v, _ := strings.Cut(rest, `"} `)
					m[ep], _ = strconv.ParseFloat(v, 64)
				}
			}
		}
		return sum, count
	}
	s0, c0 := sums(before)
	s1, c1 := sums(after)
	out := map[string]time.Duration{}
	for ep := range s1 {
		if n := c1[ep] - c0[ep]; n > 0 {
			out[ep] = time.Duration((s1[ep] - s0[ep]) / n * float64(time.Second))
		}
	}
	return out
}

// compressedSize returns the size of a gzip-compressed scrape on the wire.
func compressedSize(u string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}

func post(u string) error {
	resp, err := client.Post(u, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func stats(base string) (fakedocker.Stats, error) {
	var st fakedocker.Stats
	resp, err := client.Get(base + fakedocker.StatsPath)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func total64(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// percentile returns the nearest-rank percentile.
func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// countSeries counts the samples of an exposition, and returns the label
// names that would mean one series per task or container.
func countSeries(body []byte) (int, []string) {
	n := 0
	var bad []string
	for _, l := range bytes.Split(body, []byte("\n")) {
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		n++
		for _, lbl := range []string{"task_id=", "task=", "container_id=", "container=", "slot="} {
			if bytes.Contains(l, []byte("{"+lbl)) || bytes.Contains(l, []byte(","+lbl)) {
				if !slices.Contains(bad, lbl) {
					bad = append(bad, lbl)
				}
			}
		}
	}
	return n, bad
}

func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func printTable(results []result) {
	fmt.Printf("\ntargets, marked at size %s: requests/scrape ≤ %d and a %d-scrape wave no more than one scrape; p50 ≤ %.0f× floor, p95 ≤ %.0f× floor; peak RSS ≤ %d MiB; series < %d, none per task\n\n",
		bench.Target.Name, maxRequests, 10, maxP50Floors, maxP95Floors, maxRSS>>20, maxSeries)
	fmt.Println("| size | nodes | services | tasks | bytes/scrape | requests/scrape (wave) | floor | p50 | p95 | p50 gzip | p95 gzip | peak RSS | series |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		s := r.size
		// The targets are those of the target size; the other rows show
		// how the figures grow.
		mark := func(ok bool) string {
			if s.Name != bench.Target.Name {
				return ""
			}
			return mark(ok)
		}
		reqOK := r.requests <= maxRequests && float64(r.waveMax) <= r.requests
		p50OK := float64(r.p50) <= maxP50Floors*float64(r.floor)
		p95OK := float64(r.p95) <= maxP95Floors*float64(r.floor)
		gz50OK := float64(r.gzP50) <= maxP50Floors*float64(r.floor)
		gz95OK := float64(r.gzP95) <= maxP95Floors*float64(r.floor)
		rssOK := r.rss <= maxRSS
		seriesOK := r.series < maxSeries && len(r.perTaskLbls) == 0
		fmt.Printf("| %s | %d | %d | %d | %s | %.0f (%d) %s | %s | %s (%.1f×) %s | %s (%.1f×) %s | %s (%.1f×) %s | %s (%.1f×) %s | %s %s | %d %s |\n",
			s.Name, s.Nodes(), s.Services+s.Global, s.Tasks(), mb(r.bytes),
			r.requests, r.waveMax, mark(reqOK), ms(r.floor),
			ms(r.p50), ratio(r.p50, r.floor), mark(p50OK),
			ms(r.p95), ratio(r.p95, r.floor), mark(p95OK),
			ms(r.gzP50), ratio(r.gzP50, r.floor), mark(gz50OK),
			ms(r.gzP95), ratio(r.gzP95, r.floor), mark(gz95OK),
			mib(r.rss), mark(rssOK), r.series, mark(seriesOK))
		if len(r.perTaskLbls) > 0 {
			fmt.Printf("  size %s has per-task labels: %v\n", s.Name, r.perTaskLbls)
		}
	}
}

// printTimes splits the mean scrape: the requests run concurrently, the
// task list being the longest; the rest of the scrape is the ping, the
// report and the exposition.
func printTimes(results []result) {
	fmt.Println("\nwhere the time goes: mean plain scrape, mean request time (sent to decoded) by endpoint, and the rest")
	fmt.Println()
	fmt.Println("| size | scrape | tasks | services | nodes | info | rest (scrape − tasks) |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.size.Name, ms1(r.mean),
			ms1(r.read["tasks"]), ms1(r.read["services"]), ms1(r.read["nodes"]), ms1(r.read["info"]), ms1(r.mean-r.read["tasks"]))
	}
}

func ms1(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// printGrowth shows time and memory against the bytes the daemon returns:
// linear growth keeps the per-megabyte figures flat from size to size. The
// peak RSS of the main table is the end's, after the concurrent waves.
func printGrowth(results []result) {
	fmt.Println("\ngrowth: per megabyte of Docker API response")
	fmt.Println()
	fmt.Println("| size | nodes × services | bytes/scrape | exposition (plain / gzip) | p50 | p50 per MB | peak RSS, sequential scrapes | peak RSS − idle | per MB |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		s := r.size
		perMB := float64(r.bytes) / 1e6
		fmt.Printf("| %s | %d | %s | %s / %s | %s | %.2f ms | %s | %s | %.2f MiB |\n",
			s.Name, s.Nodes()*(s.Services+s.Global), mb(r.bytes), mb(int64(r.expoBytes)), mb(int64(r.gzBytes)),
			ms(r.p50), float64(r.p50)/1e6/perMB, mib(r.seqRSS), mib(r.rss-r.idleRSS), float64(r.rss-r.idleRSS)/(1<<20)/perMB)
	}
}
