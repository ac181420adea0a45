#!/bin/bash
# tests/bench/vm-bench.sh: issue 4's VM-create benchmark (`make bench` runs
# it after tests/bench/run; `make bench-vm` alone).  Root.
#
# On one test-bed host with libvirt (domains type qemu, TCG), set up like
# tests/system/test_vms.py: the time from POST /vm-instances (InstantStart)
# to the job reporting the VM Running, against a script inside the same
# host doing qemu-img create -b + virsh define + virsh start with one of
# kvmstack's own domain XMLs; sequentially (median of BENCH_VM_N) and
# BENCH_VM_BATCH at once; then where kvmstack's time goes.  Target:
# kvmstack's overhead <= 50 ms per VM.  See tests/bench/vm_bench.py.
# Prints the table and writes tests/artifacts/bench-vm.txt.  The target is
# informational: the exit status is 0 unless the harness itself broke.
# Nothing leaves the machine; the bed, server, domains and files are
# removed on every exit.  About 2 minutes on 2 cores.
#
# Environment: KVMSTACK_BUILD (build), BENCH_VM_N (10), BENCH_VM_BATCH
# (10), BENCH_VM_ROUNDS (3), BENCH_VM_TARGET_MS (50).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVMSTACK_BUILD:-build}

die() {
    echo "vm-bench: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (the test bed)"
for t in libvirtd:libvirt-daemon-system virsh:libvirt-clients \
         qemu-img:qemu-utils qemu-system-x86_64:qemu-system-x86; do
    command -v "${t%%:*}" >/dev/null 2>&1 \
        || die "'${t%%:*}' is missing (apt-get install ${t#*:}, or make deps)"
done
cd "$ROOT"
[ -x "$BUILD/kvmstack" ] && [ -x "$BUILD/kvmstack-agent" ] \
    || make -s BUILD="$BUILD" all || die "cannot build kvmstack"
# Only the test guest is needed; built (cached) only when missing.
[ -f "$BUILD/images/test-guest.qcow2" ] \
    || make -s BUILD="$BUILD" "$BUILD/images/test-guest.qcow2" \
    || die "cannot build $BUILD/images/test-guest.qcow2 (make images)"
exec env KVMSTACK_BUILD="$BUILD" python3 tests/bench/vm_bench.py
