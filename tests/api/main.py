#!/usr/bin/env python3
"""main.py: runs the API test cases (tests/api/test_*.py) against real
`kvmstack serve` processes and prints TAP.  Normally started by tests/run
(tier api); by hand:

    KVMSTACK_BUILD=build python3 tests/api/main.py [--only GLOB] [--list]

--only GLOB keeps the results named 'case: item' that match GLOB; a case
runs when its name matches GLOB or the part of GLOB before ':'.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

if __name__ == "__main__":
    sys.exit(harness.main(HERE))
