"""Restart: SIGTERM the main server, start it again on the same database;
everything is still there (every collection compares equal, and the
database dump too), sessions stay valid, finished jobs still answer, and a
fresh login works.  Runs after the other cases so that it restarts a
server holding everything they created."""

import time

from harness import Client, case, check, db_dump, dump_diff, expect

COLLECTIONS = (
    "/zones", "/clusters", "/hosts", "/hosts/kvm", "/primary-storage",
    "/backup-storage", "/backup-storage/sftp", "/images", "/l2-networks",
    "/l2-networks/no-vlan", "/l2-networks/vlan", "/l2-networks/vxlan",
    "/l3-networks", "/l3-networks/ip-ranges", "/network-services/providers",
    "/instance-offerings", "/instance-offerings/virtual-routers",
    "/vm-instances", "/vm-instances/nics", "/vips", "/port-forwarding",
    "/accounts",
)


# Connection state that a version with host agents refreshes when it
# reconnects after a restart; everything else must stay as it was.
VOLATILE = {"status", "lastOpDate", "lastError"}
LIVE = ("/hosts", "/hosts/kvm", "/backup-storage", "/backup-storage/sftp")


def snapshot(c):
    out = {}
    for path in COLLECTIONS:
        r = expect(c.get(path + "?limit=100000"), 200)
        invs = sorted(r.invs, key=lambda x: x["uuid"])
        if path in LIVE:
            invs = [{k: v for k, v in i.items() if k not in VOLATILE}
                    for i in invs]
        out[path] = invs
    return out


@case("restart", order=90)
def restart(t):
    srv = t.env.main()
    c = srv.login()
    S = {}

    with t.step("record every collection, a session and a finished job"):
        if not c.find("/zones", "RS-ZONE"):
            z = c.create("/zones", {"name": "RS-ZONE"})
            cl = c.create("/clusters", {"name": "RS-CLUSTER",
                                        "zoneUuid": z["uuid"],
                                        "hypervisorType": "KVM"})
            r = c.post("/hosts/kvm", {"name": "RS-HOST",
                                      "clusterUuid": cl["uuid"],
                                      "managementIp": "127.0.0.41",
                                      "sshPort": 1,
                                      "password": "rs-password"})
            expect(r, 202)
            S["job"] = r.body["location"]
            # Any finished job will do (a version with SSH bootstrap fails
            # this one: nothing listens on port 1).
            j = c.wait_job(S["job"])
            expect(j, (200, 503))
            S["job_status"], S["job_body"] = j.status, j.body
        S["before"] = snapshot(c)
        check(len(S["before"]["/zones"]) >= 1, "nothing to compare")
        S["dump"] = db_dump(srv.db, ignore=("session", "apiJob", "host",
                                            "backupStorage"))

    with t.step("SIGTERM stops the server cleanly"):
        t0 = time.monotonic()
        rc = srv.stop(timeout=15)
        check(rc is not None, "the server ignored SIGTERM for 15 s")
        check(rc == 0, "the server exited with status %r on SIGTERM" % rc)
        check(time.monotonic() - t0 < 10, "shutdown took %.1f s"
              % (time.monotonic() - t0))

    with t.step("start again on the same database"):
        srv.start(port=srv.port)

    old = Client(srv.url, c.session)

    with t.step("the old session is still valid"):
        expect(old.get("/zones"), 200)

    with t.step("every collection and table is unchanged (but for the "
                "connection state of hosts and backup storage)"):
        after = snapshot(old)
        diffs = [p for p in COLLECTIONS if after[p] != S["before"][p]]
        check(not diffs, "collections differ after restart: %s; e.g. %s"
              " before=%r after=%r" % (
                  diffs, diffs[:1],
                  S["before"][diffs[0]][:2] if diffs else None,
                  after[diffs[0]][:2] if diffs else None))
        d = dump_diff(S["dump"], db_dump(srv.db, ignore=(
            "session", "apiJob", "host", "backupStorage")))
        check(not d, "database rows changed across the restart:\n" + d)

    if "job" in S:
        with t.step("a finished job still answers with its result"):
            j = old.get("/api-jobs/" + S["job"].rsplit("/", 1)[1])
            check(j.status == S["job_status"] and j.body == S["job_body"],
                  "job result changed: %r" % j)

    with t.step("a fresh login works and can write"):
        n = Client(srv.url).login(srv.password)
        z = n.create("/zones", {"name": "RS-AFTER"})
        expect(n.delete("/zones/" + z["uuid"]), 200)
