// Package exposition holds the end-to-end test of the exporter's metrics
// exposition: the real binary, run against a fake Engine API whose answers
// carry label values Docker itself would mostly refuse (quotes, backslashes,
// newlines, control characters, non-ASCII, invalid UTF-8), must still serve
// a valid exposition that parses back to the same values.
package exposition
