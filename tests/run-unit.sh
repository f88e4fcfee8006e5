#!/usr/bin/env bash
# Run cmocka unit-test binaries; print one counts line for the whole set.
# usage: run-unit.sh LABEL BIN...
set -u
label=$1; shift
passed=0; failed=0; broken=()
for bin in "$@"; do
	out=$("$bin" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^\[ *(PASSED|FAILED|SKIPPED) *\]|ERROR|runtime error|Sanitizer' || true
	p=$(printf '%s\n' "$out" | sed -nE 's/^\[  PASSED  \] ([0-9]+) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -nE 's/^\[  FAILED  \] ([0-9]+) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
	passed=$((passed + p)); failed=$((failed + f))
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		# Crashed or exited early: count it as a failure and show why.
		failed=$((failed + 1)); broken+=("$bin")
		printf '%s\n' "$out" | tail -20
	fi
done
[[ ${#broken[@]} -eq 0 ]] || echo "unit ($label): crashed: ${broken[*]}"
echo "unit ($label): $passed passed, $failed failed"
[[ $failed -eq 0 ]]
