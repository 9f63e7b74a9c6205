// Package monitoring holds the test helpers for the monitoring files shipped
// with the exporter: the alerting rules and example configurations in
// alerts/, the recording rules in rules/ and the Grafana dashboards in
// dashboards/.
//
// The tests of those directories use it, and so can an end-to-end test that
// runs a real Prometheus and Alertmanager against a real swarm:
//
//   - Tool finds promtool, prometheus, amtool or prometheus-alertmanager,
//     skipping the test when one is missing outside CI and failing it in CI.
//   - BuildExporter and StartExporter run the real exporter binary, and
//     FakeDocker serves it a captured swarm (testdata/docker/<scenario>).
//   - StartPrometheus runs a real Prometheus on loopback.
//   - PanelQueries lists every dashboard query with Grafana's variables
//     substituted.
//   - WriteConfig copies alerts/ and rules/ to a directory, optionally with
//     shorter for: durations (and nothing else changed), and points the
//     copied alerts/prometheus.yml at given exporter targets (under a job
//     name and target labels of the test's choosing) and Alertmanagers;
//     WriteAlertmanagerConfig does the same for alerts/alertmanager.yml.
//   - AlertingRules and RecordingRules load the shipped rules.
package monitoring
