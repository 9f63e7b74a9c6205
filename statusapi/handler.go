package statusapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/swarm-exporter/swarm_exporter/report"
)

// Source reads and evaluates the swarm by ctx's deadline.
type Source func(ctx context.Context) *report.Report

// Handler serves GET {prefix}, {prefix}/cluster, {prefix}/services and
// {prefix}/nodes. It answers 200 when the swarm could be read and 503 with
// the reason otherwise; timeout bounds each request.
func Handler(prefix string, src Source, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		part := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
		g := &Generic{}
		if _, err := Part(g, part); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		rep := src(ctx)
		v, _ := Part(Render(rep), part)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Up {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	})
}
