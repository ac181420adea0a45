#!/usr/bin/env python3
"""main.py: the agent tier: the real kvmstack-agent, started with --stdio
inside test-bed hosts (tests/bed/) and driven with protocol frames
(tests/agent/agentproc.py), as root.  Runs every tests/agent/test_*.py and
prints their TAP as one stream, renumbered, with the plan at the end.

    python3 tests/agent/main.py [--only GLOB] [--list]

Each file prints TAP.  A file that handles --only and --list itself (its
source mentions '--only', as test_storage_net.py does) gets them passed
on: GLOB is one of its case names ('net-vxlan') or 'case: item'.  Any
other file is one case named after it without 'test_' ('hv' for
test_hv.py): --list prints that name and --only runs it whole when GLOB
matches the name.  A file that exits non-zero without a failing result
counts as one failure.
"""

import argparse
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tapjoin import Joiner  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    files = sorted(HERE.glob('test_*.py'))
    j = Joiner()
    for f in files:
        cmd = [sys.executable, str(f)]
        name = f.stem[len('test_'):]
        own_options = '--only' in f.read_text(errors='replace')
        if args.list:
            if own_options:
                sys.stdout.write(subprocess.run(
                    cmd + ['--list'], capture_output=True, text=True).stdout)
            else:
                print(name)
            continue
        if args.only and own_options:
            cmd += ['--only', args.only]
        elif args.only:
            head = args.only.split(':', 1)[0].strip()
            if not (fnmatch.fnmatchcase(name, args.only)
                    or fnmatch.fnmatchcase(name, head)):
                continue
        j.run(cmd, f.name)
    if args.list:
        return 0
    return j.plan()


if __name__ == '__main__':
    sys.exit(main())
