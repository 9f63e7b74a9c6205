package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ReadSet is the documented set of requests the exporter makes (the
// README's "Docker API access" section): GET or HEAD on these paths, with
// or without an API version prefix. A read-only Docker socket proxy that
// allows them is all the exporter needs.
var ReadSet = regexp.MustCompile(`^(/v[0-9]+\.[0-9]+)?/(_ping|info|nodes|services|tasks)$`)

// Proxy sits between an exporter and a daemon's socket. It forwards the
// requests of the read set and refuses (403) and records every other one.
type Proxy struct {
	// Host is the DOCKER_HOST the exporter uses.
	Host string

	srv *http.Server

	mu         sync.Mutex
	requests   map[string]int // "METHOD /path" without version, forwarded
	log        []ProxyRequest
	violations []string
}

// ProxyRequest is one forwarded request.
type ProxyRequest struct {
	At  time.Time
	Req string // "METHOD /path" without version
}

// StartProxy starts a filtering proxy in front of a unix-socket daemon host
// ("unix:///…"); the test fails at cleanup if any request was refused.
func StartProxy(t *testing.T, daemonHost string) *Proxy {
	t.Helper()
	sock := strings.TrimPrefix(daemonHost, "unix://")
	p := &Proxy{requests: map[string]int{}}
	path := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = "unix://" + path
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
			r.Out.Host = "docker"
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
		FlushInterval: -1,
		// The exporter cancels requests at its deadlines: not an error here.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !ReadSet.MatchString(r.URL.Path) {
			p.mu.Lock()
			p.violations = append(p.violations, r.Method+" "+r.URL.RequestURI())
			p.mu.Unlock()
			http.Error(w, `{"message":"refused by the read-only proxy"}`, http.StatusForbidden)
			return
		}
		req := r.Method + " " + ReadSet.ReplaceAllString(r.URL.Path, "/$2")
		p.mu.Lock()
		p.requests[req]++
		p.log = append(p.log, ProxyRequest{time.Now(), req})
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	t.Cleanup(func() {
		p.srv.Close()
		if v := p.Violations(); len(v) > 0 {
			t.Errorf("the exporter sent requests outside the documented read set: %q", v)
		}
	})
	return p
}

// Requests returns the forwarded requests so far, by "METHOD /path".
func (p *Proxy) Requests() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.requests))
	for k, v := range p.requests {
		out[k] = v
	}
	return out
}

// Log returns the forwarded requests so far, in the order they came.
func (p *Proxy) Log() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.log...)
}

// Violations returns the refused requests.
func (p *Proxy) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}
