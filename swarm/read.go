// The read of the swarm: one shared read at a time, its five requests, the
// election grace, and one log line per change of outcome.

package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// MinAPIVersion is the oldest Engine API the exporter reads: Docker 20.10.
// Older daemons lack the job modes and the task filters it relies on.
const MinAPIVersion = "1.41"

// CurrentTaskStates are the desired states of the tasks a read fetches:
// running (services), ready (tasks being restarted, e.g. rejected ones) and
// complete (job tasks). Tasks kept as history have desired state shutdown
// and are never fetched: on a large swarm they are most of the bytes.
var CurrentTaskStates = []string{"running", "ready", "complete"}

// Config configures a Reader.
type Config struct {
	// Host overrides DOCKER_HOST when not empty. DOCKER_CERT_PATH,
	// DOCKER_TLS_VERIFY and DOCKER_API_VERSION are honoured as the Docker
	// client documents them.
	Host string
	// Timeout bounds one shared read.
	Timeout time.Duration
	// ElectionGrace is how long after the last read that saw a leader a
	// "no leader" answer counts as an election under way (a failed read,
	// KindElection) rather than a lost quorum (a read whose answer is KO).
	// Zero means no grace.
	ElectionGrace time.Duration
	// MaxAge is how long after the start of a successful read Read reuses
	// its snapshot instead of reading again; 0 reads on every call.
	MaxAge time.Duration
	// Services says which reads fetch the services and the task list.
	Services ServicesMode
	// Registerer receives the reader's self-metrics; nil means none.
	Registerer prometheus.Registerer
	Logger     log.Logger
}

// Reader reads swarm state through the Engine API. It is safe for
// concurrent use: concurrent reads share one in-flight read, and one read
// runs at a time.
type Reader struct {
	api          *client.Client
	host         string
	basePath     string
	http         *http.Client
	timeout      time.Duration
	grace        time.Duration
	maxAge       time.Duration
	servicesMode ServicesMode
	logger       log.Logger
	metrics      *readMetrics

	group singleflight.Group
	// last is the last read's snapshot (see reusable).
	last atomic.Pointer[Snapshot]
	// readsServices is whether the last read that saw the nodes found the
	// local node to be the one that reads the services (the leader, or its
	// stand-in: Snapshot.readsServices).
	readsServices atomic.Bool
	// wantFull counts the ReadFull calls under way.
	wantFull atomic.Int32
	// The decoders' buffers, reused from read to read: reads are shared,
	// so one runs at a time. A sync.Pool would drop them in the garbage
	// collections of every read.
	tasks        TasksDecoder
	services     scanner
	lastTask     atomic.Int64
	lastServices atomic.Int64
	// lastLeader is when the last read that saw a leader started (Unix
	// nanoseconds), 0 before any.
	lastLeader atomic.Int64

	mu       sync.Mutex
	lastKind string // what the last read logged about, "" before any
	// lastScope is what the last read logged about the services under
	// ServicesLeader: "" before any, "leader" or "follower".
	lastScope string
}

// NewReader returns a Reader for the daemon that Config and the Docker
// environment variables point to. It does not connect.
func NewReader(cfg Config) (*Reader, error) {
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	m := newReadMetrics(cfg.Registerer)
	opts := []client.Opt{client.FromEnv, client.WithHTTPResponseHook(func(resp *http.Response) {
		// The Docker client only sends pings here.
		m.requests.WithLabelValues("ping", strconv.Itoa(resp.StatusCode)).Inc()
	})}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client: %w", err)
	}
	hostURL, err := client.ParseHostURL(api.DaemonHost())
	if err != nil {
		return nil, err
	}
	r := &Reader{
		api:          api,
		host:         api.DaemonHost(),
		timeout:      cfg.Timeout,
		grace:        cfg.ElectionGrace,
		maxAge:       cfg.MaxAge,
		servicesMode: cfg.Services,
		logger:       cfg.Logger,
		metrics:      m,
	}
	if hostURL.Scheme == "tcp" {
		r.basePath = hostURL.Path
	}
	// The exporter's own requests stream their bodies into decoders, which
	// the Docker client's typed calls cannot do; they go over connections
	// made by the client's dialer, so host, TLS and socket settings stay the
	// client's. The dialer does TLS itself, hence plain "http" below.
	dial := api.Dialer()
	r.http = &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialContext(ctx, dial)
			},
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r, nil
}

// Host returns the daemon address the reader talks to.
func (r *Reader) Host() string { return r.host }

// Close releases idle connections.
func (r *Reader) Close() error {
	r.http.CloseIdleConnections()
	return r.api.Close()
}

// Ping pings the daemon (and negotiates the API version once).
func (r *Reader) Ping(ctx context.Context) (client.PingResult, error) {
	res, err := r.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		r.metrics.requests.WithLabelValues("ping", "error").Inc()
	}
	return res, err
}

func (r *Reader) sharedRead() (snap *Snapshot) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		// A panic here would kill the process from singleflight's goroutine:
		// report it as a failed read instead.
		if p := recover(); p != nil {
			snap = &Snapshot{ReadAt: start, Err: &Error{
				Kind: KindDecode, Err: fmt.Errorf("internal error: %v", p),
				Hint: "please report this with the stack trace: " + string(debug.Stack()),
			}}
		}
		if snap.Err == nil && !snap.NoLeader {
			r.readsServices.Store(snap.readsServices())
		}
		if r.maxAge > 0 {
			// Kept for reuse; without max-age the snapshot is not kept
			// beyond the scrapes that share it.
			r.last.Store(snap)
		}
		r.record(snap)
	}()
	reading := r.readsServices.Load()
	snap = r.electionGrace(r.read(ctx, start, r.fetchServices()))
	snap.forStatusOnly = r.servicesMode == ServicesLeader && !reading && snap.Err == nil && !snap.NoLeader &&
		!snap.NoServices && !snap.readsServices()
	return snap
}

// electionGrace tells a leader election from a lost quorum. When the leader
// goes away, the managers answer "no leader" until they have elected a new
// one — a few seconds, during which the swarm is not down. A "no leader"
// answer within the grace after a read that saw a leader is therefore a
// failed read (no vote), not a KO; after the grace, or when no read ever
// saw a leader, the quorum is lost.
func (r *Reader) electionGrace(snap *Snapshot) *Snapshot {
	switch {
	case snap.Err == nil && !snap.NoLeader:
		r.lastLeader.Store(snap.ReadAt.UnixNano())
	case snap.NoLeader:
		last := r.lastLeader.Load()
		if last == 0 || snap.ReadAt.Sub(time.Unix(0, last)) >= r.grace {
			return snap
		}
		snap.NoLeader = false
		snap.Err = &Error{Kind: KindElection,
			Err:  fmt.Errorf("the swarm has had no leader for %v: the managers are electing one", snap.ReadAt.Sub(time.Unix(0, last)).Round(time.Second)),
			Hint: fmt.Sprintf("an election ends within seconds; if there is still no leader %v after the last one was seen, quorum is lost and the cluster status turns KO", r.grace)}
	}
	return snap
}

// read reads the swarm; services says whether to fetch the services and
// the tasks from the start. When it does not, and /nodes shows that the
// local node now reads them (the leader, or its stand-in while the leader
// is drained), they are fetched after /nodes, so that the instance on a new
// leader reports them from its first read.
func (r *Reader) read(ctx context.Context, start time.Time, services bool) *Snapshot {
	snap := &Snapshot{ReadAt: start}
	ping, err := r.Ping(ctx)
	if err != nil {
		snap.Err = r.classify(ctx, "ping", err)
		return snap
	}
	snap.APIVersion = r.api.ClientVersion()
	if versions.LessThan(snap.APIVersion, MinAPIVersion) {
		snap.Err = &Error{Kind: KindAPIVersion,
			Err:  fmt.Errorf("the Docker daemon at %s speaks Engine API %s", r.host, snap.APIVersion),
			Hint: "swarm_exporter needs Engine API " + MinAPIVersion + " (Docker 20.10) or newer: upgrade Docker, or unset a DOCKER_API_VERSION older than " + MinAPIVersion}
		return snap
	}
	// The ping's Swarm header tells whether this node can serve cluster
	// state; if not, only /info is read, to say why.
	manager := ping.SwarmStatus == nil ||
		(ping.SwarmStatus.NodeState == "active" && ping.SwarmStatus.ControlAvailable)

	var (
		info    *Info
		infoErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		infoErr = r.get(ctx, "info", "/info", nil, func(body io.Reader) (err error) {
			info, err = DecodeInfo(body)
			return err
		})
	})
	var clusterErr error
	if manager {
		clusterErr = r.readCluster(ctx, snap, services)
	}
	wg.Wait()
	if manager && !services && infoErr == nil && clusterErr == nil {
		snap.Info = info
		if snap.readsServices() {
			clusterErr = r.readServices(ctx, snap)
			services = true
		}
	}

	if infoErr != nil {
		snap.Err = r.classify(ctx, "info", infoErr)
		return snap
	}
	snap.Info = info
	if e := stateError(info); e != nil {
		snap.Err = e
		return snap
	}
	switch {
	case !manager:
		// The ping said otherwise a moment ago: the node just changed. The
		// next read fetches cluster state.
		snap.Err = &Error{Kind: KindNotManager, Err: errors.New("the node was not a swarm manager when the read began"),
			Hint: "the node's role is changing; the next scrape reads again"}
	case isNoLeader(clusterErr) || strings.Contains(info.Error, msgNoLeader):
		// /info says so too, in Swarm.Error, while the other endpoints
		// answer HTTP 500.
		snap.NoLeader = true
		snap.Nodes, snap.Services, snap.Tasks = nil, nil, Tasks{}
	case clusterErr != nil:
		var re *requestError
		endpoint := ""
		if errors.As(clusterErr, &re) {
			endpoint, clusterErr = re.endpoint, re.err
		}
		snap.Err = r.classify(ctx, endpoint, clusterErr)
	default:
		snap.NoServices = !services
	}
	return snap
}

// readCluster reads the nodes, and with services the services and tasks,
// concurrently; the first error cancels the other requests.
func (r *Reader) readCluster(ctx context.Context, snap *Snapshot, services bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return r.get(gctx, "nodes", "/nodes", nil, func(body io.Reader) (err error) {
			snap.Nodes, err = DecodeNodes(body)
			return err
		})
	})
	if services {
		r.goServices(gctx, g, snap)
	}
	return g.Wait()
}

// readServices reads the services and tasks concurrently.
func (r *Reader) readServices(ctx context.Context, snap *Snapshot) error {
	g, gctx := errgroup.WithContext(ctx)
	r.goServices(gctx, g, snap)
	return g.Wait()
}

// goServices starts the requests for the services and the tasks in g.
func (r *Reader) goServices(gctx context.Context, g *errgroup.Group, snap *Snapshot) {
	g.Go(func() error {
		return r.get(gctx, "services", "/services", url.Values{"status": {"true"}}, func(body io.Reader) (err error) {
			snap.Services, err = decodeServices(&r.services, body, int(r.lastServices.Load()))
			r.lastServices.Store(int64(len(snap.Services)))
			return err
		})
	})
	g.Go(func() error {
		filters, _ := json.Marshal(map[string][]string{"desired-state": CurrentTaskStates})
		return r.get(gctx, "tasks", "/tasks", url.Values{"filters": {string(filters)}}, func(body io.Reader) error {
			snap.Tasks.List = make([]Task, 0, r.lastTask.Load())
			if err := r.tasks.Decode(body, &snap.Tasks); err != nil {
				return err
			}
			r.lastTask.Store(int64(len(snap.Tasks.List)))
			return nil
		})
	})
}

type requestError struct {
	endpoint string
	err      error
}

func (e *requestError) Error() string { return e.endpoint + ": " + e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// get sends one GET request and streams a successful body into decode.
func (r *Reader) get(ctx context.Context, endpoint, path string, query url.Values, decode func(io.Reader) error) error {
	start := time.Now()
	u := "http://" + client.DummyHost + r.basePath + "/v" + r.api.ClientVersion() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &requestError{endpoint, err}
	}
	resp, err := r.http.Do(req)
	if err != nil {
		r.metrics.observe(endpoint, "error", start, 0)
		return &requestError{endpoint, err}
	}
	defer resp.Body.Close()
	body := &countingReader{r: resp.Body}
	code := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode/100 != 2 {
		err = apiError(resp.StatusCode, body)
	} else {
		err = decode(body)
		// Drain what follows the JSON value (a newline) so that the
		// connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	}
	r.metrics.observe(endpoint, code, start, body.n)
	if err != nil {
		return &requestError{endpoint, err}
	}
	return nil
}

func (r *Reader) classify(ctx context.Context, endpoint string, err error) *Error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// A body cut short by the deadline surfaces as a decode error.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if e := classifyVersion(err); e != nil {
		return e
	}
	return classify(endpoint, r.host, err)
}

// record updates the self-metrics and logs once per change of outcome.
func (r *Reader) record(snap *Snapshot) {
	r.metrics.reads.Inc()
	kind := ""
	var e *Error
	switch {
	case errors.As(snap.Err, &e):
		kind = string(e.Kind)
		r.metrics.readErrors.WithLabelValues(kind).Inc()
	case snap.Err != nil:
		kind = string(KindAPI)
		r.metrics.readErrors.WithLabelValues(kind).Inc()
	case snap.NoLeader:
		kind = "no_leader"
		r.metrics.lastRead.Set(float64(snap.ReadAt.UnixNano()) / 1e9)
	default:
		kind = "ok"
		r.metrics.lastRead.Set(float64(snap.ReadAt.UnixNano()) / 1e9)
		if snap.NoServices || snap.forStatusOnly {
			r.metrics.services.Set(0)
		} else {
			r.metrics.services.Set(1)
		}
	}

	r.mu.Lock()
	changed := kind != r.lastKind
	first := r.lastKind == ""
	r.lastKind = kind
	r.mu.Unlock()
	if changed {
		r.logOutcome(snap, e, kind, first)
	}
	if kind == "ok" && r.servicesMode == ServicesLeader {
		r.logScope(snap)
	}
}

// logOutcome logs a read whose outcome differs from the last one's.
func (r *Reader) logOutcome(snap *Snapshot, e *Error, kind string, first bool) {
	counts := []any{"nodes", len(snap.Nodes)}
	if !snap.NoServices {
		counts = append(counts, "services", len(snap.Services))
	}
	switch {
	case e != nil && e.Kind == KindElection:
		level.Warn(r.logger).Log("msg", "the swarm is electing a leader", "host", r.host, "err", e.Error(), "hint", e.Hint)
	case e != nil:
		level.Error(r.logger).Log("msg", "cannot read the swarm", "reason", kind, "host", r.host, "err", e.Error(), "hint", e.Hint)
	case snap.Err != nil:
		level.Error(r.logger).Log("msg", "cannot read the swarm", "host", r.host, "err", snap.Err)
	case snap.NoLeader:
		level.Error(r.logger).Log("msg", "the swarm has no leader: quorum is lost, cluster status is KO",
			"host", r.host, "managers", snap.Info.Managers, "nodes", snap.Info.Nodes,
			"hint", "restart the down managers so that a majority is reachable; as a last resort run `docker swarm init --force-new-cluster` on a surviving manager")
	case first:
		if !snap.NoServices {
			counts = append(counts, "tasks", len(snap.Tasks.List))
		}
		level.Info(r.logger).Log(append([]any{"msg", "reading the swarm", "host", r.host, "engine_version", snap.Info.ServerVersion, "api_version", snap.APIVersion,
			"node", snap.Info.Name}, counts...)...)
	default:
		level.Info(r.logger).Log(append([]any{"msg", "reading the swarm again", "host", r.host, "engine_version", snap.Info.ServerVersion, "api_version", snap.APIVersion,
			"node", snap.Info.Name}, counts...)...)
	}
}

// logScope logs, under ServicesLeader, when the instance starts or stops
// reading the services and tasks because leadership moved.
func (r *Reader) logScope(snap *Snapshot) {
	scope := "follower"
	switch {
	case snap.LocalLeader():
		scope = "leader"
	case snap.readsServices():
		scope = "stand-in"
	}
	r.mu.Lock()
	last := r.lastScope
	r.lastScope = scope
	r.mu.Unlock()
	switch {
	case scope == last:
	case scope == "leader":
		level.Info(r.logger).Log("msg", "this manager is the swarm's leader: reading the services and tasks too", "host", r.host, "node", snap.Info.Name,
			"services", len(snap.Services))
	case scope == "stand-in":
		level.Info(r.logger).Log("msg", "the swarm's leader is drained, so no exporter runs there: this manager stands in for it, reading the services and tasks too (--read.services=leader)",
			"host", r.host, "node", snap.Info.Name, "services", len(snap.Services))
	case last == "":
		level.Info(r.logger).Log("msg", "this manager is not the swarm's leader: reading the cluster and the nodes only, the exporter on the leader reads the services and tasks (--read.services=leader)",
			"host", r.host, "node", snap.Info.Name)
	case last == "stand-in":
		level.Info(r.logger).Log("msg", "this manager no longer stands in for the leader: reading the cluster and the nodes only from now on, the exporter on the leader (or another stand-in) reads the services and tasks (--read.services=leader)",
			"host", r.host, "node", snap.Info.Name)
	default:
		level.Info(r.logger).Log("msg", "this manager is no longer the swarm's leader: reading the cluster and the nodes only from now on, the exporter on the new leader reads the services and tasks (--read.services=leader)",
			"host", r.host, "node", snap.Info.Name)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// dialContext makes a dialer that ignores its context (the Docker client's
// TLS and unix dialers do) return when the context ends.
func dialContext(ctx context.Context, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dial(ctx)
		ch <- result{c, err}
	}()
	select {
	case res := <-ch:
		return res.conn, res.err
	case <-ctx.Done():
		go func() {
			if res := <-ch; res.conn != nil {
				res.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
