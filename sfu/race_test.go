//go:build race

package sfu

// raceEnabled is true when the tests run with -race, under which sync.Pool
// drops what it is given at random, so pooled buffers are allocated again.
const raceEnabled = true
