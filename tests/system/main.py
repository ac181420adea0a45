#!/usr/bin/env python3
"""main.py: the system tier: a real `kvmstack serve` against real test
hosts (network namespaces with their own sshd and libvirtd, tests/bed/),
as root.  Prints TAP.  Normally run by tests/run (tier system); by hand:

    python3 tests/system/main.py [--only GLOB] [--list]

The cases are the @case functions of tests/system/test_*.py, run by the
api tier's harness.main().
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "api"))
sys.path.insert(0, str(HERE.parent / "bed"))

import harness  # noqa: E402

if __name__ == "__main__":
    sys.exit(harness.main(HERE))
