#!/usr/bin/env python3
"""main.py: the system tier: a real `kvmstack serve` against real test
hosts (network namespaces with their own sshd and libvirtd, tests/bed/),
as root.  Prints TAP.  Normally run by tests/run (tier system); by hand:

    python3 tests/system/main.py [--only GLOB] [--list]
"""

import argparse
import fnmatch
import importlib
import signal
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "api"))
sys.path.insert(0, str(HERE.parent / "bed"))

import harness  # noqa: E402


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()

    for f in sorted(HERE.glob("test_*.py")):
        importlib.import_module(f.stem)
    cases = sorted(harness.CASES, key=lambda c: (c[0], c[1]))
    if args.list:
        for _, name, _ in cases:
            print(name)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    tap = harness.Tap(only=args.only)
    env = harness.Env()
    try:
        for _, name, fn in cases:
            head = (args.only or "").split(":", 1)[0].strip()
            if args.only and not (fnmatch.fnmatchcase(name, args.only)
                                  or fnmatch.fnmatchcase(name, head)):
                continue
            ctx = harness.Case(name, env, tap)
            try:
                fn(ctx)
            except harness.StepAbort:
                pass
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: B902
                tap.result(False, "%s: (case crashed)" % name,
                           "".join(traceback.format_exception(
                               type(e), e, e.__traceback__)), case=name)
    finally:
        env.close()
    tap.plan()
    return 1 if tap.failed or tap.n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
