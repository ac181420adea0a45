#!/usr/bin/env python3
"""main.py: the vr tier: kvmstack-vr (hostagent/vr/) for real, in network
namespaces that the tests create and remove (tests/vr/vrlib.py), as root.
Runs every tests/vr/test_*.py and prints their TAP as one stream,
renumbered, with the plan at the end.  tests/run runs it as tier "vr".

    python3 tests/vr/main.py [--only GLOB] [--list]

Each file is one case named after it without 'test_' ('dataplane' for
test_dataplane.py): --list prints the names, --only runs the files whose
name matches GLOB.  A file that exits non-zero without a failing result
counts as one failure.  Needs build/kvmstack-vr ($KVMSTACK_BUILD), nft,
dnsmasq, busybox (udhcpc) and root; without root every case is skipped.
"""

import argparse
import fnmatch
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

sys.path.insert(0, str(HERE.parent))

from tapjoin import Joiner  # noqa: E402
from vrlib import vr_binary  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    files = sorted(HERE.glob('test_*.py'))
    names = [f.stem[len('test_'):] for f in files]
    if args.list:
        print('\n'.join(names))
        return 0
    if args.only:
        head = args.only.split(':', 1)[0].strip()
        if head.startswith('vr/'):
            head = head[3:]
        keep = [(f, n) for f, n in zip(files, names)
                if fnmatch.fnmatchcase(n, head)]
    else:
        keep = list(zip(files, names))
    if os.geteuid() != 0:
        print('1..0 # SKIP the vr tier needs root (network namespaces)')
        return 0
    if not os.access(vr_binary(), os.X_OK):
        print('not ok 1 - %s missing (make)' % vr_binary())
        print('1..1')
        return 1
    j = Joiner()
    for f, name in keep:
        j.run([sys.executable, str(f)], f.name, name)
    return j.plan()


if __name__ == '__main__':
    sys.exit(main())
