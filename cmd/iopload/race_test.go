//go:build race

package main

// raceEnabled is true when the tests run with -race; iopd is then built
// with it too.
const raceEnabled = true
