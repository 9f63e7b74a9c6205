// Command swarm_exporter exposes the health of a Docker swarm to
// Prometheus: node counts by role and state, manager quorum, desired and
// running replicas per service, and an OK / WARNING / KO status for the
// cluster, each service and overall. `swarm_exporter status` prints the same
// verdicts as JSON or a table, for scripts and cron jobs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	sloggokit "github.com/tjhop/slog-gokit"

	"github.com/swarm-exporter/swarm_exporter/collector"
	"github.com/swarm-exporter/swarm_exporter/report"
	"github.com/swarm-exporter/swarm_exporter/statusapi"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

const (
	exporterName   = "swarm_exporter"
	defaultAddress = ":9675"
	statusPrefix   = "/api/v1/status"
)

// flags holds every command-line setting.
type flags struct {
	dockerHost    string
	dockerTimeout time.Duration
	readMaxAge    time.Duration
	readServices  string
	electionGrace time.Duration
	minManagers   int
	minWorkers    int
	allowZero     bool
	logLevel      string
	logFormat     string

	web           *web.FlagConfig
	metricsPath   string
	timeoutOffset time.Duration
	collectors    collector.Flags

	statusPart   string
	statusOutput string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var f flags
	app, status := newApp(&f)
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v, try --help\n", exporterName, err)
		return statusapi.ExitUsage
	}
	base := newBaseLogger(f.logLevel, f.logFormat, stderr)
	logger := log.With(base, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
	if cmd == status.FullCommand() {
		return runStatus(&f, stdout, stderr)
	}
	if err := runServer(&f, logger, base); err != nil {
		level.Error(logger).Log("msg", "exporter stopped", "err", err)
		return 1
	}
	return 0
}

// newApp defines the command line: parsing fills f. The health flags take
// their defaults from report.DefaultOptions, so the two cannot drift.
func newApp(f *flags) (app *kingpin.Application, status *kingpin.CmdClause) {
	app = kingpin.New(exporterName, "Prometheus exporter for the health of a Docker swarm, read through the Engine API of a manager.")
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')

	defaults := report.DefaultOptions()
	app.Flag("docker.host", "Docker daemon to read, overriding DOCKER_HOST (e.g. unix:///var/run/docker.sock or tcp://manager:2376). DOCKER_CERT_PATH, DOCKER_TLS_VERIFY and DOCKER_API_VERSION are honoured.").
		StringVar(&f.dockerHost)
	app.Flag("docker.timeout", "Deadline of one read of the swarm; also caps every scrape.").
		Default("10s").DurationVar(&f.dockerTimeout)
	app.Flag("read.max-age", "Reuse the last successful read for the scrapes that arrive less than this long after it started, instead of reading again; 0 reads on every scrape. "+
		"Just under the scrape interval (14s for 15s) makes several Prometheus servers share one read per interval; a scrape's data is then up to this old.").
		Default("0s").DurationVar(&f.readMaxAge)
	app.Flag("read.services", "Which instances read the services and tasks: always, or leader (only while the manager read through is the swarm's leader, or its stand-in while the leader is drained; the others report the cluster and the nodes, and leave the services to the leader's exporter). "+
		"The status API and the status command always read them.").
		Default("always").EnumVar(&f.readServices, swarm.ServicesModes...)
	app.Flag("health.min-managers", "Managers a cluster needs to be OK (fault tolerant).").
		Default(strconv.Itoa(defaults.Thresholds.MinManagers)).IntVar(&f.minManagers)
	app.Flag("health.min-workers", "Workers a cluster needs to be OK; 0 judges a managers-only swarm by its managers alone.").
		Default(strconv.Itoa(defaults.Thresholds.MinWorkers)).IntVar(&f.minWorkers)
	app.Flag("health.election-grace", "How long after the exporter last saw a leader a swarm without leader counts as electing one (docker_swarm_up 0, reason leader_election) rather than as having lost quorum (cluster KO).").
		Default("45s").DurationVar(&f.electionGrace)
	app.Flag("health.allow-zero-replicas", "Count a service scaled to 0 replicas as OK instead of KO.").
		Default(strconv.FormatBool(defaults.Policy.AllowZeroReplicas)).BoolVar(&f.allowZero)
	app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").
		Default("info").EnumVar(&f.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").
		Default("logfmt").EnumVar(&f.logFormat, "logfmt", "json")

	// The server's flags are global, so that `swarm_exporter --help` lists
	// them as users of other exporters expect; `status` ignores them.
	f.web = kingpinflag.AddFlags(app, defaultAddress)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").
		Default("/metrics").StringVar(&f.metricsPath)
	app.Flag("web.timeout-offset", "Time taken off Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) so that a slow scrape still answers in time.").
		Default("0.25s").DurationVar(&f.timeoutOffset)
	f.collectors = collector.RegisterFlags(app)
	app.Command("serve", "Serve metrics, the status API and the landing page (the default).").Default()

	status = app.Command("status", "Read the swarm once, print its status and exit: 0 OK, 1 WARNING, 2 KO, 3 unreadable, 64 usage error. "+
		"Without a part the exit code is the overall status; `cluster` and `services` exit by their own status; `nodes` exits 0.")
	status.Arg("part", "Part to print: cluster, services or nodes (default: everything).").
		EnumVar(&f.statusPart, statusapi.Parts...)
	status.Flag("output", "Output format: json (the py-docker SummaryInfo shape) or table.").
		Short('o').Default("json").EnumVar(&f.statusOutput, "json", "table")
	return app, status
}

// newBaseLogger returns a go-kit logger filtered by level, without the
// timestamp and caller that the exporter's own lines carry: the slog bridge
// for exporter-toolkit adds its own.
func newBaseLogger(lvl, format string, w io.Writer) log.Logger {
	var l log.Logger
	if format == "json" {
		l = log.NewJSONLogger(log.NewSyncWriter(w))
	} else {
		l = log.NewLogfmtLogger(log.NewSyncWriter(w))
	}
	return level.NewFilter(l, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
}

// reportOptions returns the default health settings with the flags'
// values.
func (f *flags) reportOptions() report.Options {
	o := report.DefaultOptions()
	o.Thresholds.MinManagers = f.minManagers
	o.Thresholds.MinWorkers = f.minWorkers
	o.Policy.AllowZeroReplicas = f.allowZero
	return o
}

// newMetrics wires what the metrics path serves: the reader of the swarm,
// the exporter with the enabled collectors, and the handler that serves the
// swarm's metrics with the exporter's own (Go, process, build info, Docker
// requests).
func newMetrics(f *flags, logger log.Logger) (*swarm.Reader, *collector.Exporter, http.Handler, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(exporterName),
	)
	services, err := swarm.ParseServicesMode(f.readServices)
	if err != nil {
		return nil, nil, nil, err
	}
	if f.readMaxAge < 0 {
		return nil, nil, nil, fmt.Errorf("--read.max-age=%v: want 0 (read on every scrape) or a positive duration", f.readMaxAge)
	}
	reader, err := swarm.NewReader(swarm.Config{
		Host: f.dockerHost, Timeout: f.dockerTimeout, ElectionGrace: f.electionGrace,
		MaxAge: f.readMaxAge, Services: services, Registerer: reg, Logger: logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	exp, err := collector.New(reader, f.reportOptions(), f.collectors.Enabled(), logger)
	if err != nil {
		reader.Close()
		return nil, nil, nil, err
	}
	h := exp.Handler(collector.HandlerOpts{MaxTimeout: f.dockerTimeout, TimeoutOffset: f.timeoutOffset, Gatherer: reg})
	return reader, exp, h, nil
}

func runServer(f *flags, logger, base log.Logger) error {
	level.Info(logger).Log("msg", "starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("msg", "build context", "build_context", version.BuildContext())

	reader, exp, metrics, err := newMetrics(f, logger)
	if err != nil {
		return err
	}
	defer reader.Close()
	level.Info(logger).Log("msg", "reading the swarm through", "docker_host", reader.Host(),
		"collectors", strings.Join(f.collectors.Enabled(), ","), "docker_timeout", f.dockerTimeout,
		"read_max_age", f.readMaxAge, "read_services", f.readServices)

	// Read once at start so that a wrong socket or a worker node is logged
	// before the first scrape.
	go exp.Report(context.Background())

	mux := http.NewServeMux()
	mux.Handle(f.metricsPath, metrics)
	status := statusapi.Handler(statusPrefix, exp.FullReport, f.dockerTimeout)
	mux.Handle(statusPrefix, status)
	mux.Handle(statusPrefix+"/", status)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := reader.Ping(ctx); err != nil {
			http.Error(w, "Not ready: the Docker API did not answer its ping: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	if f.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Docker Swarm Exporter",
			Description: "Health of a Docker swarm: nodes, managers and quorum, services, and an OK / WARNING / KO status.",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: f.metricsPath, Text: "Metrics"},
				{Address: statusPrefix, Text: "Status", Description: "The swarm's status as JSON (py-docker's generic_status shape)"},
				{Address: "/-/ready", Text: "Ready", Description: "Whether the Docker API answers"},
			},
		})
		if err != nil {
			return err
		}
		mux.Handle("/", landing)
	}

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// TLS handshake failures and the like, in the exporter's log format.
		ErrorLog: stdlog.New(log.NewStdlibAdapter(level.Warn(log.With(logger, "component", "http"))), "", 0),
	}
	return web.ListenAndServe(srv, f.web, slog.New(sloggokit.NewGoKitHandler(base, nil)))
}

func runStatus(f *flags, stdout, stderr io.Writer) int {
	// Only errors reach stderr: the report itself says what it could read.
	logger := log.With(newBaseLogger("error", f.logFormat, stderr), "ts", log.DefaultTimestampUTC)
	reader, err := swarm.NewReader(swarm.Config{Host: f.dockerHost, Timeout: f.dockerTimeout, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", exporterName, err)
		return statusapi.ExitUnreadable
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.dockerTimeout)
	defer cancel()
	rep := report.Build(reader.Read(ctx), f.reportOptions())

	if f.statusOutput == "table" {
		if err := statusapi.WriteTable(stdout, rep, f.statusPart); err != nil {
			return statusapi.ExitUnreadable
		}
	} else {
		v, err := statusapi.Part(statusapi.Render(rep), f.statusPart)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return statusapi.ExitUsage
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return statusapi.ExitUnreadable
		}
	}
	return statusapi.ExitCode(rep, f.statusPart)
}
