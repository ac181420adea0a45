#!/usr/bin/env python3
"""main.py: runs the API test cases (tests/api/test_*.py) against real
`kvmstack serve` processes and prints TAP.  Normally started by tests/run
(tier api); by hand:

    KVMSTACK_BUILD=build python3 tests/api/main.py [--only GLOB] [--list]

--only GLOB keeps the results named 'case: item' that match GLOB; a case
runs when its name matches GLOB or the part of GLOB before ':'.
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

import harness  # noqa: E402


def _terminate(signum, frame):
    # Once: further signals must not interrupt the cleanup that follows.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt("signal %d" % signum)


def case_selected(name, only):
    if not only:
        return True
    head = only.split(":", 1)[0].strip()
    return fnmatch.fnmatchcase(name, only) or fnmatch.fnmatchcase(name, head)


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
            if not case_selected(name, args.only):
                continue
            ctx = harness.Case(name, env, tap)
            try:
                fn(ctx)
            except harness.StepAbort:
                if ctx.skip_reason:
                    tap.result(True, "%s: the steps after it" % name,
                               case=name, skip=ctx.skip_reason)
                else:
                    tap.diag("%s: stopped after the failed step above"
                             % name)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: B902
                ctx._report(False, "runs to completion", e)
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        env.close()
        try:
            tap.out.write("Bail out! interrupted (%s)\n" % (e or "^C"))
            tap.out.flush()
        except OSError:
            pass
        return 130
    except BaseException:
        env.close()
        tap.out.write("Bail out! harness error\n")
        tap.diag(traceback.format_exc())
        return 2
    finally:
        env.close()
    tap.plan()
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
