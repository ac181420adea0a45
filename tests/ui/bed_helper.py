#!/usr/bin/env python3
"""tests/ui/bed_helper.py: one test-bed host (tests/bed/bed.py) for the
browser tests, kept alive while the test runs.

    python3 tests/ui/bed_helper.py

Prints one JSON line: {"ip", "port", "password", "fingerprint", "dir",
"nfs_export"} once the host's sshd is up (or {"error": "..."}), then waits
until its standard input closes (the test ended, or died) and tears the
host down.  The host is a network namespace on this machine (10.250.N.2);
nothing leaves it.

Stand-ins, as ../shared/TESTBED.md requires and tests/system/test_vms.py
does: this kernel has no NFS client, so the host's agent.conf mounts NFS
primary storage as a bind mount of a local folder ('nfs_export', the
tutorial's /usr/local/zstack/nfs_root below a temporary folder); the host
gets a spare link 'data0' for the public L2 network, so that bridging it
leaves the host's management link eth0 alone.  /backupStorage, /etc/kvmstack
and the agent's folders are private to the host.
"""

import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bed"))

def main():
    out = sys.stdout
    sys.stdout = sys.stderr     # Only the JSON line goes to the test.
    standin = tempfile.mkdtemp(prefix="kvmstack-ui-nfs-")
    export = standin + "/usr/local/zstack/nfs_root"
    bed = None
    try:
        from bed import KVMSTACK_DIRS, Bed
        os.makedirs(export)
        bed = Bed()
        host = bed.add_host("uihost", with_libvirt=True, private_dirs=KVMSTACK_DIRS)
        host.run("mkdir -p /etc/kvmstack && printf '%%s\\n' "
                 "'# NFS stand-in: this kernel has no NFS client' "
                 "'nfs_mount_command = mount --bind %s{export} {path}' "
                 "> /etc/kvmstack/agent.conf" % standin)
        host.run("ip link add data0 type veth peer name data0p && "
                 "ip link set data0 up && ip link set data0p up")
    except Exception as e:  # noqa: BLE001 (reported to the test as is)
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}),
              file=out, flush=True)
        if bed:
            bed.close()
        shutil.rmtree(standin, ignore_errors=True)
        return 0
    try:
        print(json.dumps({"ip": host.ip, "port": host.port,
                          "password": host.password,
                          "fingerprint": host.fingerprint,
                          "dir": host.dir, "nfs_export": export}),
              file=out, flush=True)
        for _ in sys.stdin:
            pass
    finally:
        bed.close()
        shutil.rmtree(standin, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
