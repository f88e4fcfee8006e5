#!/usr/bin/env bash
# Every test, in the order cheapest first: unit tests (normal, ASan/UBSan
# and minimal builds), a bounded libFuzzer run, then the end-to-end suite
# against the three binaries. The minimal build (make min: no compile-time
# module) proves the core stands alone and refuses module flags by name.
# Ends with one counts line for everything.
set -u
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

total_pass=0; total_fail=0
count() { # label, passed, failed
	total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3))
}

run_unit() { # label, dir
	local out
	out=$(tests/run-unit.sh "$1" "$2"/tests/test_* 2>&1); echo "$out"
	local line; line=$(echo "$out" | tail -1)
	count "$1" "$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p')" \
		"$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')"
}

run_fuzz() { # a clean bounded run counts as one passed test
	local log; log=$(mktemp)
	echo "== fuzz: fuzz_virtqueue, fuzz_http, fuzz_net_tx, fuzz_balloon (libFuzzer, ${FUZZ_SECS:-20} s each over tests/fuzz/corpus/*)"
	if make --no-print-directory fuzz >"$log" 2>&1; then
		grep -E '^(Done |stat::new_units_added)' "$log"
		count fuzz 1 0
	else
		grep -v '^vmm: warning' "$log" | tail -40
		echo "fuzz: FAILED (crash, leak, sanitizer report or build error above)"
		count fuzz 0 1
	fi
	rm -f "$log"
}

run_e2e() { # label, vmm binary
	local log; log=$(mktemp)
	echo "== e2e ($1): VMM=$2"
	VMM=$2 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local summary; summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -1)
	local p f e
	# Whole numbers, at the start of the line or after a non-digit.
	p=$(echo "$summary" | sed -nE 's/(^|.*[^0-9])([0-9]+) passed.*/\2/p')
	f=$(echo "$summary" | sed -nE 's/(^|.*[^0-9])([0-9]+) failed.*/\2/p')
	e=$(echo "$summary" | sed -nE 's/(^|.*[^0-9])([0-9]+) error.*/\2/p')
	f=$(( ${f:-0} + ${e:-0} ))
	[[ $rc -ne 0 && $f -eq 0 ]] && f=1 # pytest broke before counting
	count "$1" "${p:-0}" "$f"
	rm -f "$log"
}

# The stock-kernel tests need Debian's cloud kernel (fetched once, cached).
scripts/fetch-kernel.sh || { echo "run-all: cannot fetch the stock kernel"; exit 1; }

run_unit normal build
run_unit asan build-asan
run_unit minimal build-min
run_fuzz
run_e2e normal ./vmm
run_e2e asan build-asan/vmm
run_e2e minimal build-min/vmm

echo
echo "all tests: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
