#!/usr/bin/env python3
"""tests/ui/main.py: the ui tier for tests/run: the browser tests
(tests/ui/run.js: Debian's chromium driven by playwright-core against a
real kvmstack serve) print TAP; this passes it through.  `make deps-ui`
installs chromium and the npm modules first (make check does)."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    env = dict(os.environ)
    env.setdefault("KVMSTACK_BUILD", "build")
    sys.exit(subprocess.call(["node", str(HERE / "run.js")], env=env,
                             cwd=str(HERE.parent.parent)))
