#!/bin/sh
# Runs every native Go fuzz target for a given time each (default 10m), one
# after another, and stops at the first failure. What a target finds is
# written by `go test` to that package's testdata/fuzz/<Target>/ : commit it,
# so that the input runs as a seed in every `go test` from then on.
#
#   scripts/fuzz.sh            # 10 minutes each
#   scripts/fuzz.sh 60s        # a quick pass
#   scripts/fuzz.sh 10m FuzzLoadYAML   # only targets matching a pattern
#
# -fuzzminimizetime is kept short: Go minimizes every new interesting input
# (by default for up to 60 s, one byte at a time), and these executions are
# not counted in "execs". With inputs of a few KB (the schedule YAML) that
# looked like a fuzzer stuck at 2-8 executions for minutes.
set -eu
time=${1:-10m}
only=${2:-.}
parallel=${FUZZ_PARALLEL:-1}
cd "$(dirname "$0")/.."
targets="
./signaling/protocol FuzzClientMessage
./signaling/token FuzzVerify
./signaling/token FuzzParseKeys
./signaling/token FuzzParsePrivateKey
./rooms FuzzValidRoomID
./rooms/audit FuzzDecode
./rooms/audit FuzzParseKey
./rooms/civil FuzzParseDate
./rooms/civil FuzzParseWeek
./rooms/civil FuzzParseClock
./rooms/schedule FuzzLoadYAML
./rooms/schedule FuzzParseWeekday
./cmd/iopd FuzzSignal
./cmd/iopd FuzzRESTBodies
"
echo "$targets" | while read -r pkg target; do
	[ -n "$pkg" ] || continue
	echo "$target" | grep -qE "$only" || continue
	echo "== $pkg $target for $time"
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" -fuzzminimizetime 5s -parallel "$parallel" "$pkg"
done
