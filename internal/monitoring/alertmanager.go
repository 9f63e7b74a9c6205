package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// AlertmanagerServer is a real Alertmanager started by a test on loopback.
type AlertmanagerServer struct {
	*Process
	URL string // http://127.0.0.1:port
}

// StartAlertmanager runs Alertmanager with the configuration file at
// configPath (e.g. alerts/alertmanager.yml, or a copy whose receivers point
// at a test's webhook) until the test ends, without clustering.
func StartAlertmanager(t testing.TB, configPath string) *AlertmanagerServer {
	t.Helper()
	bin := Alertmanager(t)
	addr := FreeAddr(t)
	p := start(t, addr, "/-/ready", bin,
		"--config.file="+configPath,
		"--storage.path="+t.TempDir(),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	return &AlertmanagerServer{Process: p, URL: "http://" + addr}
}

// AMAlert is an alert as Alertmanager's API v2 takes and gives it.
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt,omitempty"`
	EndsAt      time.Time         `json:"endsAt,omitempty"` // a past time resolves the alert
	Status      *struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
		SilencedBy  []string `json:"silencedBy"`
	} `json:"status,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Post sends firing alerts, as Prometheus does.
func (a *AlertmanagerServer) Post(ctx context.Context, alerts ...AMAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("posting alerts: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// Alerts returns every alert Alertmanager holds, with its status (active,
// suppressed, and by which inhibiting alerts).
func (a *AlertmanagerServer) Alerts(ctx context.Context) ([]AMAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/api/v2/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []AMAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
