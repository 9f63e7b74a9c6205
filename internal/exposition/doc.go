// Package exposition holds the end-to-end tests of the exporter's metrics
// exposition: the real binary, run against a fake Engine API, serves for
// every captured scenario an exposition that `promtool check metrics`
// accepts with no lint but the allowed ones (allowedLints), and, when the
// daemon's answers carry label values Docker itself would mostly refuse
// (quotes, backslashes, newlines, control characters, non-ASCII, invalid
// UTF-8), a valid exposition that parses back to the same values.
package exposition
