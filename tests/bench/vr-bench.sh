#!/bin/bash
# tests/bench/vr-bench.sh: issue 5's port-forwarding benchmark (`make
# bench` runs it after tests/bench/run; `make bench-vr` alone).  Root.
#
# In network namespaces (tests/vr/vrlib.py; nothing leaves the machine),
# with N = 100, 1,000, 10,000 and 30,000 rules present: the time to add one
# rule and to delete one, and the TCP connect latency (p50, p99) through
# the DNAT to a backend, for
#   maps       kvmstack-vr (nftables maps; nft transaction time inside the
#              daemon and the whole vr.apply call, with the full
#              configuration and with a delta of the one rule, as mgmt
#              sends a rule's change; and a delta deleting a rule that
#              has connections, whose conntrack entries are flushed)
#   nft-rules  one nft DNAT rule per mapping (libnftables in-process)
#   iptables   a linear iptables-legacy nat chain (iptables-legacy-restore)
# against the targets of issue 5 (add/delete <= 5 ms at every N; connect
# p99 at 30,000 within 10% of N=100; both >= 10x better than iptables at
# 10,000).  Prints the table and writes tests/artifacts/bench-vr.txt.  The
# targets are informational: the exit status is 0 unless the harness
# itself broke.  Takes about a minute on 2 cores.
#
# Environment: KVMSTACK_BUILD (build), BENCH_VR_N (100,1000,10000,30000),
# BENCH_VR_CONNECTS (2000 per round, 3 rounds), BENCH_VR_REPS (5).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVMSTACK_BUILD:-build}

die() {
    echo "vr-bench: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
missing=
for p in nft:nftables iptables-legacy-restore:iptables ip:iproute2; do
    command -v "${p%%:*}" >/dev/null 2>&1 || missing="$missing ${p#*:}"
done
if [ -n "$missing" ]; then
    echo "vr-bench: installing$missing (Debian)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >&2 || die "cannot install$missing"
fi
make -s -C "$ROOT" BUILD="$BUILD" "$BUILD/kvmstack-vr" "$BUILD/vr-connect" \
    || die "cannot build $BUILD/kvmstack-vr and $BUILD/vr-connect"
cd "$ROOT"
exec env KVMSTACK_BUILD="$BUILD" python3 tests/bench/vr_bench.py
