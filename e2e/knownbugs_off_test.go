//go:build !knownbugs

package e2e

// faultKnownBugs: see knownbugs_on_test.go.
const faultKnownBugs = false
