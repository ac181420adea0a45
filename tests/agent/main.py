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
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = re.compile(r'^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$')
PLAN = re.compile(r'^1\.\.\d+')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()
    files = sorted(HERE.glob('test_*.py'))
    n = 0
    failed = 0
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
        print('# %s' % f.name, flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        file_failed = 0
        for line in proc.stdout:
            line = line.rstrip('\n')
            m = RESULT.match(line)
            if m:
                n += 1
                if m.group(1) == 'not ok':
                    file_failed += 1
                print('%s %d - %s' % (m.group(1), n, m.group(3)), flush=True)
            elif PLAN.match(line):
                continue
            else:
                print(line, flush=True)
        rc = proc.wait()
        if rc != 0 and not file_failed:
            n += 1
            file_failed += 1
            print('not ok %d - %s exited with status %d' % (n, f.name, rc),
                  flush=True)
        failed += file_failed
    if args.list:
        return 0
    print('1..%d' % n, flush=True)
    return 1 if failed or n == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
