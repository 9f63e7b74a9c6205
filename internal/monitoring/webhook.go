package monitoring

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Notification is one webhook notification from Alertmanager (payload
// version 4), with when and where it arrived.
type Notification struct {
	Received time.Time `json:"-"`
	Path     string    `json:"-"` // the URL path it was posted to

	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []NotifiedAlert   `json:"alerts"`
}

// NotifiedAlert is one alert of a Notification.
type NotifiedAlert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Key identifies the alert by its labels: alertname{k="v", ...}, sorted.
func (a NotifiedAlert) Key() string { return LabelsKey(a.Labels) }

// LabelsKey renders a label set as alertname{k="v", ...} with the other
// labels sorted, the same for equal sets.
func LabelsKey(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		if k != "alertname" && k != "__name__" {
			kv = append(kv, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(kv)
	name := labels["alertname"]
	if name == "" {
		name = labels["__name__"]
	}
	return name + "{" + strings.Join(kv, ", ") + "}"
}

// Webhook is an HTTP server that records every notification Alertmanager
// posts to it, on any path, until the test ends.
type Webhook struct {
	URL string // http://127.0.0.1:port

	srv *httptest.Server
	mu  sync.Mutex
	got []Notification
	bad []string
}

// StartWebhook starts a recording webhook receiver. The test fails at its
// end if a request could not be decoded as a notification.
func StartWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var n Notification
		if err == nil {
			err = json.Unmarshal(body, &n)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil || r.Method != http.MethodPost {
			w.bad = append(w.bad, fmt.Sprintf("%s %s: %v: %.200s", r.Method, r.URL.Path, err, body))
			http.Error(rw, "bad notification", http.StatusBadRequest)
			return
		}
		n.Received = time.Now()
		n.Path = r.URL.Path
		w.got = append(w.got, n)
	}))
	w.URL = w.srv.URL
	t.Cleanup(func() {
		w.srv.Close()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.bad) > 0 {
			t.Errorf("the webhook got requests that are not notifications: %q", w.bad)
		}
	})
	return w
}

// Notifications returns the notifications received so far, in order of
// arrival.
func (w *Webhook) Notifications() []Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Notification(nil), w.got...)
}
