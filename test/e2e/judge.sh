#!/usr/bin/env bash
# judge.sh: how run.sh judges one suite from `go test -v` output. Source it.
#
# e2e_judge RC LOG prints "PASS (...)" or "FAIL (...)" and returns 0 only for
# a pass. Under the runner every prerequisite (libvirtd, the remote daemon,
# qemu-img, the template) is provided, so a skipped test is a gap in the
# harness and fails the suite, and so does a run that executed no test.
e2e_judge() {
	local rc="$1" log="$2" pass fail skip
	pass=$(grep -c -- '^\s*--- PASS' "$log" || true)
	fail=$(grep -c -- '^\s*--- FAIL' "$log" || true)
	skip=$(grep -c -- '^\s*--- SKIP' "$log" || true)
	if [ "$rc" -ne 0 ]; then
		echo "FAIL ($fail failed, $pass passed, $skip skipped)"
		return 1
	fi
	if [ "$skip" -gt 0 ]; then
		echo "FAIL ($skip skipped, $pass passed: a skip under the runner is a failure)"
		return 1
	fi
	if [ "$pass" -eq 0 ]; then
		echo "FAIL (no test ran)"
		return 1
	fi
	echo "PASS ($pass passed, 0 skipped)"
}
