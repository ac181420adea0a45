#!/usr/bin/env python3
"""tests/ui/bed_helper.py: one test-bed host (tests/bed/bed.py) for the
browser tests, kept alive while the test runs.

    python3 tests/ui/bed_helper.py [--libvirt]

Prints one JSON line: {"ip", "port", "password", "fingerprint", "dir"} once
the host's sshd is up (or {"error": "..."}), then waits until its standard
input closes (the test ended, or died) and tears the host down.  The host
is a network namespace on this machine (10.250.N.2); nothing leaves it.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bed"))


def main():
    out = sys.stdout
    sys.stdout = sys.stderr     # Only the JSON line goes to the test.
    try:
        from bed import Bed
        bed = Bed()
        host = bed.add_host("uihost", with_libvirt="--libvirt" in sys.argv)
    except Exception as e:  # noqa: BLE001 (reported to the test as is)
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}),
              file=out, flush=True)
        return 0
    try:
        print(json.dumps({"ip": host.ip, "port": host.port,
                          "password": host.password,
                          "fingerprint": host.fingerprint,
                          "dir": host.dir}), file=out, flush=True)
        for _ in sys.stdin:
            pass
    finally:
        bed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
