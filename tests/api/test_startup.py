"""Start-up of kvmstack serve on a damaged inventory: PRAGMA quick_check
runs at every start and a corrupt file is refused with a clear message,
never served; a file that is not SQLite at all is refused too; a sound
file is migrated and served."""

import os
import socket
import subprocess
import time

from harness import REPO, Server, case, check, free_port, kvmstack_bin


def start_bad(db, timeout=20):
    """Runs kvmstack serve on 'db' and expects it to refuse: returns its
    exit status and what it printed."""
    port = free_port()
    env = dict(os.environ, KVMSTACK_ADMIN_PASSWORD="Startup-test-1")
    p = subprocess.run([str(kvmstack_bin()), "serve", "--listen",
                        "127.0.0.1:%d" % port, "--db", db],
                       capture_output=True, text=True, timeout=timeout,
                       env=env, stdin=subprocess.DEVNULL)
    with socket.socket() as s:
        s.settimeout(1)
        served = s.connect_ex(("127.0.0.1", port)) == 0
    return p.returncode, p.stdout + p.stderr, served


@case("startup", order=5)
def test_startup(t):
    srv = Server("api-startup")

    with t.step("a sound inventory: migrated, served, stopped cleanly"):
        srv.start()
        c = srv.login()
        c.create("/zones", {"name": "ZONE-STARTUP"})
        check(srv.stop() == 0, "did not stop cleanly")

    with t.step("a corrupt inventory is refused with a clear message and "
                "not served"):
        # Overwrite the middle of the file (past the header page) with
        # garbage: SQLite still opens it, quick_check finds the damage.
        size = os.path.getsize(srv.db)
        check(size > 3 * 4096, "database too small to damage: %d" % size)
        with open(srv.db, "r+b") as f:
            f.seek(4096)
            f.write(os.urandom(size - 4096))
        rc, out, served = start_bad(srv.db)
        check(rc != 0, "a corrupt inventory was served: %r" % out)
        check(not served, "the port answered")
        check("integrity check" in out or "not a usable SQLite" in out
              or "malformed" in out, "no clear message: %r" % out)
        t.tap.diag("corrupt inventory: %s" % out.strip().splitlines()[-1])

    with t.step("a file that is not SQLite is refused"):
        bad = os.path.join(srv.tmpdir, "not-sqlite.db")
        with open(bad, "w") as f:
            f.write("this is not a database\n" * 200)
        rc, out, served = start_bad(bad)
        check(rc != 0 and not served, "served: %r" % out)
        check("not a database" in out or "not a usable SQLite" in out,
              "no clear message: %r" % out)
    srv.cleanup()
