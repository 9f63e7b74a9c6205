// Package fakedocker serves a Docker Engine API from memory, for unit tests
// of decoding and for scale benchmarks: responses captured from a real
// daemon (testdata/docker/<scenario>/) or generated at any size by Synth.
// It counts requests and bytes per endpoint and can delay or break answers.
// It never replaces the end-to-end suite, which runs real daemons.
package fakedocker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client/pkg/versions"
)

// Endpoints are the API endpoints the fake serves.
var Endpoints = []string{"info", "nodes", "services", "tasks", "tasks-all"}

// Response is one canned answer.
type Response struct {
	Status int // 0 means 200
	Body   []byte
}

// Fixture is a set of canned answers: one per endpoint, plus the headers of
// the ping. "tasks" answers the exporter's filtered task list; "tasks-all"
// answers an unfiltered one.
type Fixture struct {
	Ping      http.Header
	Responses map[string]Response
}

// LoadFixture reads testdata/docker/<scenario>/: <endpoint>.json bodies,
// <endpoint>.status codes and ping.headers.
func LoadFixture(dir string) (*Fixture, error) {
	f := &Fixture{Ping: http.Header{}, Responses: map[string]Response{}}
	for _, ep := range Endpoints {
		body, err := os.ReadFile(filepath.Join(dir, ep+".json"))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		r := Response{Status: http.StatusOK, Body: body}
		if s, err := os.ReadFile(filepath.Join(dir, ep+".status")); err == nil {
			if r.Status, err = strconv.Atoi(strings.TrimSpace(string(s))); err != nil {
				return nil, err
			}
		}
		f.Responses[ep] = r
	}
	if h, err := os.ReadFile(filepath.Join(dir, "ping.headers")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(h))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
				f.Ping.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
	} else {
		f.Ping.Set("Api-Version", "1.41")
	}
	return f, nil
}

// Server is a fake Engine API on a loopback TCP port or a unix socket.
type Server struct {
	srv *httptest.Server
	// Host is the DOCKER_HOST to reach it (tcp://… or unix://…).
	Host string

	mu       sync.Mutex
	fixture  *Fixture
	requests map[string]int
	bytes    map[string]int64
	methods  []string
	delay    map[string]time.Duration
	hang     map[string]chan struct{}
	minAPI   string
}

// New starts a server on loopback TCP.
func New(f *Fixture) *Server {
	s := newServer(f)
	s.srv = httptest.NewServer(s)
	s.Host = "tcp://" + s.srv.Listener.Addr().String()
	return s
}

// Serve starts a server on l, a TCP or unix listener.
func Serve(f *Fixture, l net.Listener) *Server {
	s := newServer(f)
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	if l.Addr().Network() == "unix" {
		s.Host = "unix://" + l.Addr().String()
	} else {
		s.Host = "tcp://" + l.Addr().String()
	}
	return s
}

func newServer(f *Fixture) *Server {
	return &Server{fixture: f, requests: map[string]int{}, bytes: map[string]int64{},
		delay: map[string]time.Duration{}, hang: map[string]chan struct{}{}}
}

// Close stops the server and releases hung requests.
func (s *Server) Close() {
	s.mu.Lock()
	for ep, ch := range s.hang {
		close(ch)
		delete(s.hang, ep)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetFixture swaps the canned answers, e.g. to simulate a failure.
func (s *Server) SetFixture(f *Fixture) {
	s.mu.Lock()
	s.fixture = f
	s.mu.Unlock()
}

// Delay makes an endpoint ("ping" included) answer after d.
func (s *Server) Delay(endpoint string, d time.Duration) {
	s.mu.Lock()
	s.delay[endpoint] = d
	s.mu.Unlock()
}

// Hang makes an endpoint never answer until Close.
func (s *Server) Hang(endpoint string) {
	s.mu.Lock()
	s.hang[endpoint] = make(chan struct{})
	s.mu.Unlock()
}

// Requests returns the number of requests per endpoint so far.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// TotalRequests returns the number of requests so far.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.requests {
		n += v
	}
	return n
}

// Bytes returns the response bytes sent per endpoint so far.
func (s *Server) Bytes() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.bytes))
	for k, v := range s.bytes {
		out[k] = v
	}
	return out
}

// Methods returns "METHOD request-URI" of every request so far.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.methods)
}

// SetMinAPIVersion makes the fake refuse a versioned request below v as a
// daemon does (Docker 29.0 refused API versions below 1.44 by default; later
// 29.x releases take DOCKER_MIN_API_VERSION), and one above the ping's
// Api-Version too. "" accepts every version.
func (s *Server) SetMinAPIVersion(v string) {
	s.mu.Lock()
	s.minAPI = v
	s.mu.Unlock()
}

// Reset clears the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	clear(s.requests)
	clear(s.bytes)
	s.methods = nil
	s.mu.Unlock()
}

var versioned = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// CurrentTasksFilter is the task filter the exporter sends.
const CurrentTasksFilter = `{"desired-state":["running","ready","complete"]}`

// StatsPath answers the counters as JSON (Stats) and ResetPath clears them
// on POST; neither counts as a request. They let a benchmark that runs the
// fake in another process (tools/fakeswarm) read what a scrape cost.
const (
	StatsPath = "/_fake/stats"
	ResetPath = "/_fake/reset"
)

// Stats are the counters since the last reset.
type Stats struct {
	Requests map[string]int   `json:"requests"`
	Bytes    map[string]int64 `json:"bytes"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == StatsPath:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Stats{Requests: s.Requests(), Bytes: s.Bytes()})
		return
	case path == ResetPath && r.Method == http.MethodPost:
		s.Reset()
		return
	}
	var version string
	if m := versioned.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
	}
	endpoint := strings.TrimPrefix(path, "/")
	if endpoint == "_ping" {
		endpoint = "ping"
	}
	if endpoint == "tasks" && !isCurrentTasksFilter(r.URL.Query()) {
		endpoint = "tasks-all"
	}
	s.mu.Lock()
	s.requests[endpoint]++
	s.methods = append(s.methods, r.Method+" "+r.URL.RequestURI())
	f, delay, hang, minAPI := s.fixture, s.delay[endpoint], s.hang[endpoint], s.minAPI
	s.mu.Unlock()
	if msg := versionRefusal(version, minAPI, f.Ping.Get("Api-Version")); msg != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"message": msg})
		return
	}

	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if endpoint == "ping" {
		for k, v := range f.Ping {
			if !strings.EqualFold(k, "Content-Length") && !strings.EqualFold(k, "Date") {
				w.Header()[k] = v
			}
		}
		if r.Method == http.MethodGet {
			w.Write([]byte("OK"))
		}
		return
	}
	resp, ok := f.Responses[endpoint]
	if !ok {
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Api-Version", f.Ping.Get("Api-Version"))
	if resp.Status != 0 && resp.Status != http.StatusOK {
		w.WriteHeader(resp.Status)
	}
	n, _ := w.Write(resp.Body)
	s.mu.Lock()
	s.bytes[endpoint] += int64(n)
	s.mu.Unlock()
}

// isCurrentTasksFilter reports whether a task list asks for the current
// tasks only (any order of the desired states, or desired-state=running as
// `docker service ps` and curl users write it).
func isCurrentTasksFilter(q url.Values) bool {
	f := q.Get("filters")
	if f == "" {
		return false
	}
	return strings.Contains(f, `"desired-state"`)
}

// AsNode returns a copy of the fixture whose /info answers as another node
// of the captured swarm (Swarm.NodeID and Name, the node's hostname in
// /nodes), e.g. to read a swarm captured on its leader through a follower.
func (f *Fixture) AsNode(id string) (*Fixture, error) {
	var nodes []struct {
		ID          string
		Description struct{ Hostname string }
	}
	if err := json.Unmarshal(f.Responses["nodes"].Body, &nodes); err != nil {
		return nil, fmt.Errorf("fixture /nodes: %w", err)
	}
	hostname := ""
	for _, n := range nodes {
		if n.ID == id {
			hostname = n.Description.Hostname
		}
	}
	if hostname == "" {
		return nil, fmt.Errorf("no node %s in the fixture", id)
	}
	info := f.Responses["info"]
	var m map[string]any
	if err := json.Unmarshal(info.Body, &m); err != nil {
		return nil, fmt.Errorf("fixture /info: %w", err)
	}
	sw, ok := m["Swarm"].(map[string]any)
	if !ok {
		return nil, errors.New("fixture /info has no Swarm")
	}
	sw["NodeID"] = id
	m["Name"] = hostname
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := &Fixture{Ping: f.Ping.Clone(), Responses: maps.Clone(f.Responses)}
	info.Body = body
	out.Responses["info"] = info
	return out, nil
}

// versionRefusal returns the message a daemon whose API versions run from
// min to max answers (HTTP 400) to a request for version v, or "" when it
// serves it. The texts are dockerd's, 20.10 and 29 alike.
func versionRefusal(v, min, max string) string {
	switch {
	case v == "" || min == "":
		return ""
	case versions.LessThan(v, min):
		return "client version " + v + " is too old. Minimum supported API version is " + min + ", please upgrade your client to a newer version"
	case max != "" && versions.GreaterThan(v, max):
		return "client version " + v + " is too new. Maximum supported API version is " + max
	}
	return ""
}

// WithAvailability returns a copy of the fixture whose /nodes gives the
// nodes ids the availability (active, pause or drain), e.g. a drained
// leader.
func (f *Fixture) WithAvailability(availability string, ids ...string) (*Fixture, error) {
	var nodes []map[string]any
	if err := json.Unmarshal(f.Responses["nodes"].Body, &nodes); err != nil {
		return nil, fmt.Errorf("fixture /nodes: %w", err)
	}
	for _, id := range ids {
		found := false
		for _, n := range nodes {
			if n["ID"] != id {
				continue
			}
			spec, ok := n["Spec"].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("fixture /nodes: node %s has no Spec", id)
			}
			spec["Availability"] = availability
			found = true
		}
		if !found {
			return nil, fmt.Errorf("no node %s in the fixture", id)
		}
	}
	body, err := json.Marshal(nodes)
	if err != nil {
		return nil, err
	}
	out := &Fixture{Ping: f.Ping.Clone(), Responses: maps.Clone(f.Responses)}
	resp := f.Responses["nodes"]
	resp.Body = body
	out.Responses["nodes"] = resp
	return out, nil
}
