//go:build race

package bench_test

// The race detector makes sync.Pool drop objects at random: what a scrape
// allocates then depends on luck, not on the code.
const raceEnabled = true
