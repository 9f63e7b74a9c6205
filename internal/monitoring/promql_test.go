package monitoring

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`max without (instance) (docker_swarm_up{job=~"a|b", x="}"})`, []string{"docker_swarm_up"}},
		{`sum by (le) (rate(x_bucket{a="b"}[5m] offset 1h)) / on (job) group_left (role) y`, []string{"x_bucket", "y"}},
		{`histogram_quantile(0.99, rate(a[$__rate_interval]))`, []string{"a"}},
		{`label_replace(a, "dst", "$1", "src", "(.*)") or {__name__="b", c="d"}`, []string{"a", "b"}},
		{`time() - max_over_time(job:x:max[5m:1m]) > bool 0 unless c and ignoring (z) d`, []string{"c", "d", "job:x:max"}},
		{`topk(3, count_values("v", e)) * inf`, []string{"e"}},
		{`f @ start()`, []string{"f"}},
		{"# comment\ng", []string{"g"}},
	}
	for _, c := range cases {
		got, err := MetricNames(c.expr)
		if err != nil {
			t.Errorf("MetricNames(%q): %v", c.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("MetricNames(%q) = %v, want %v", c.expr, got, c.want)
		}
	}
	if _, err := MetricNames(`{__name__=~"docker_.*"}`); err == nil {
		t.Error("a __name__ regex must be an error")
	}
}
