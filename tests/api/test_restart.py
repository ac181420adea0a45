"""Restart: SIGTERM the main server, start it again on the same database;
everything is still there (every collection compares equal, and the
database dump too, but for the connection state that a reconnect
refreshes), the hosts come back Connected with their storage mounted, the
Running VMs stay Running (their domains are not touched), sessions stay
valid, finished jobs still answer, and a fresh login works.  Runs after
the other cases so that it restarts a server holding everything they
created (the tutorial's HOST1 with VM1 Running)."""

import time

from harness import (Client, case, check, db_dump, dump_diff, expect,
                     host_domains)

COLLECTIONS = (
    "/zones", "/clusters", "/hosts", "/hosts/kvm", "/primary-storage",
    "/backup-storage", "/backup-storage/sftp", "/images", "/l2-networks",
    "/l2-networks/no-vlan", "/l2-networks/vlan", "/l2-networks/vxlan",
    "/l3-networks", "/l3-networks/ip-ranges", "/network-services/providers",
    "/instance-offerings", "/instance-offerings/virtual-routers",
    "/vm-instances", "/vm-instances/nics", "/vips", "/port-forwarding",
    "/accounts",
)

# Connection state that the server refreshes when it reconnects to its
# hosts (and remounts their primary storage) after a restart; everything
# else must stay as it was.  The step before the comparison checks that
# this state came back (Connected).
# playbookHash: the reconnect re-runs the host playbook, and records its
# new hash, when the playbook or the agent binary changed meanwhile (an
# upgrade; here: a rebuild while the tests ran).
HOST_VOLATILE = {"status", "lastOpDate", "lastError", "lastConnectDate",
                 "playbookHash"}
BS_VOLATILE = {"status", "lastOpDate", "lastError", "totalCapacity",
               "availableCapacity"}
PS_VOLATILE = {"status", "lastOpDate", "lastError", "totalCapacity",
               "availableCapacity"}
# A virtual router's agent connection and the generation of the
# configuration pushed again when it reconnects.
VM_VOLATILE = {"vrStatus", "vrGen"}
VOLATILE = {"/hosts": HOST_VOLATILE, "/hosts/kvm": HOST_VOLATILE,
            "/backup-storage": BS_VOLATILE,
            "/backup-storage/sftp": BS_VOLATILE,
            "/primary-storage": PS_VOLATILE,
            "/vm-instances": VM_VOLATILE}
BLANK = {"host": HOST_VOLATILE, "backupStorage": BS_VOLATILE,
         "primaryStorage": PS_VOLATILE, "vmInstance": VM_VOLATILE}


def snapshot(c):
    out = {}
    for path in COLLECTIONS:
        r = expect(c.get(path + "?limit=100000"), 200)
        invs = sorted(r.invs, key=lambda x: x["uuid"])
        if path in VOLATILE:
            invs = [{k: v for k, v in i.items() if k not in VOLATILE[path]}
                    for i in invs]
        out[path] = invs
    return out


def field_diff(path, before, after, limit=6):
    """What differs between two lists of inventories, field by field."""
    b = {i["uuid"]: i for i in before}
    a = {i["uuid"]: i for i in after}
    out = ["%s %s added" % (path, u) for u in sorted(set(a) - set(b))]
    out += ["%s %s removed" % (path, u) for u in sorted(set(b) - set(a))]
    for u in sorted(set(a) & set(b)):
        for k in sorted(set(a[u]) | set(b[u])):
            if a[u].get(k) != b[u].get(k):
                out.append("%s %s (%s).%s: %r -> %r" % (
                    path, u, b[u].get("name"), k, b[u].get(k), a[u].get(k)))
    return ", ".join(out[:limit]) + (" ..." if len(out) > limit else "")


def dump(srv):
    return db_dump(srv.db, ignore=("session", "apiJob"), blank=BLANK)


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
            # Nothing listens on port 1: the job fails; any finished job
            # will do.
            r = c.post("/hosts/kvm", {"name": "RS-HOST",
                                      "clusterUuid": cl["uuid"],
                                      "managementIp": "127.0.0.41",
                                      "sshPort": 1,
                                      "password": "rs-password"})
            expect(r, 202)
            S["job"] = r.body["location"]
            j = c.wait_job(S["job"])
            expect(j, (200, 503))
            S["job_status"], S["job_body"] = j.status, j.body
        S["before"] = snapshot(c)
        check(len(S["before"]["/zones"]) >= 1, "nothing to compare")
        S["hosts"] = [h["uuid"] for h in expect(c.get("/hosts"), 200).invs
                      if h["status"] == "Connected"]
        S["ps"] = [p["uuid"] for p in expect(c.get("/primary-storage"),
                                             200).invs
                   if p["status"] == "Connected"]
        S["running"] = [v["uuid"] for v in expect(c.get(
            "/vm-instances?q=state=Running"), 200).invs]
        S["routers"] = [v["uuid"] for v in expect(c.get(
            "/vm-instances/appliances/virtual-routers"), 200).invs
                        if v["vrStatus"] == "Connected"]
        S["domains"] = host_domains("running")
        t.tap.diag("before the restart: %d Connected host(s), %d Running "
                   "VM(s), %d Connected router(s)" % (
                       len(S["hosts"]), len(S["running"]),
                       len(S["routers"])))
        S["dump"] = dump(srv)

    with t.step("SIGTERM stops the server cleanly"):
        t0 = time.monotonic()
        rc = srv.stop(timeout=15)
        check(rc is not None, "the server ignored SIGTERM for 15 s")
        check(rc == 0, "the server exited with status %r on SIGTERM" % rc)
        check(time.monotonic() - t0 < 10, "shutdown took %.1f s"
              % (time.monotonic() - t0))

    with t.step("the Running VMs' domains keep running without the "
                "server"):
        doms = host_domains("running")
        check(doms is None or set(S["running"]) <= set(doms),
              "running domains on the host: %r, Running VMs: %r"
              % (doms, S["running"]))

    with t.step("start again on the same database"):
        srv.start(port=srv.port)

    old = Client(srv.url, c.session)

    with t.step("the old session is still valid"):
        expect(old.get("/zones"), 200)

    with t.step("the hosts come back Connected, their primary storage "
                "Connected, the Running VMs stay Running and the routers' "
                "agents reconnect"):
        t0 = time.monotonic()
        while True:
            hosts = {h["uuid"]: h for h in expect(old.get("/hosts"),
                                                  200).invs}
            ps = {p["uuid"]: p for p in expect(old.get("/primary-storage"),
                                               200).invs}
            vms = {v["uuid"]: v for v in expect(old.get("/vm-instances"),
                                                200).invs}
            bad = [(vms[u]["name"], vms[u]["state"]) for u in S["running"]
                   if vms[u]["state"] != "Running"]
            check(not bad, "%.1f s after the start, VMs that were Running "
                  "are not: %r" % (time.monotonic() - t0, bad))
            waiting = ([hosts[u]["name"] for u in S["hosts"]
                        if hosts[u]["status"] != "Connected"]
                       + [ps[u]["name"] for u in S["ps"]
                          if ps[u]["status"] != "Connected"]
                       + [vms[u]["name"] for u in S["routers"]
                          if vms[u]["vrStatus"] != "Connected"])
            if not waiting:
                break
            check(time.monotonic() - t0 < 60, "not Connected 60 s after "
                  "the start: %r" % waiting)
            time.sleep(0.1)
        # The reconnect's reconciliation may come just after Connected.
        time.sleep(1.5)
        vms = {v["uuid"]: v for v in expect(old.get("/vm-instances"),
                                            200).invs}
        bad = [(vms[u]["name"], vms[u]["state"], vms[u]["lastError"])
               for u in S["running"] if vms[u]["state"] != "Running"]
        check(not bad, "after the reconnect, VMs that were Running are "
              "not: %r" % bad)
        doms = host_domains("running")
        check(doms is None or set(S["running"]) <= set(doms),
              "running domains on the host: %r" % doms)
        t.tap.diag("Connected again %.1f s after the start"
                   % (time.monotonic() - t0))

    with t.step("every collection and table is unchanged (but for the "
                "connection state of hosts and storage)"):
        after = snapshot(old)
        diffs = [p for p in COLLECTIONS if after[p] != S["before"][p]]
        check(not diffs, "collections differ after restart: %s; %s" % (
            diffs, "; ".join(field_diff(p, S["before"][p], after[p])
                             for p in diffs)))
        d = dump_diff(S["dump"], dump(srv))
        check(not d, "database rows changed across the restart:\n" + d)

    rules = [r for r in expect(old.get("/port-forwarding?limit=100000"),
                               200).invs
             if r["vmNicUuid"] and r["state"] == "Enabled"]
    nics = {n["uuid"]: n for n in expect(old.get("/vm-instances/nics"
                                                 "?limit=100000"), 200).invs}
    rules = [r for r in rules
             if nics.get(r["vmNicUuid"], {}).get("vmInstanceUuid")
             in S["running"]]
    if S["routers"] and rules:
        with t.step("the routers still apply rule changes: disable and "
                    "enable %s (on a Running VM)" % rules[0]["name"]):
            path = "/port-forwarding/" + rules[0]["uuid"]
            for ev, state in (("disable", "Disabled"), ("enable",
                                                        "Enabled")):
                r = expect(old.action(path, "changePortForwardingRuleState",
                                      {"stateEvent": ev}), 200)
                check(r.inv["state"] == state, "%s: %r" % (ev, r))

    if "job" in S:
        with t.step("a finished job still answers with its result"):
            j = old.get("/api-jobs/" + S["job"].rsplit("/", 1)[1])
            check(j.status == S["job_status"] and j.body == S["job_body"],
                  "job result changed: %r" % j)

    with t.step("a fresh login works and can write"):
        n = Client(srv.url).login(srv.password)
        z = n.create("/zones", {"name": "RS-AFTER"})
        expect(n.delete("/zones/" + z["uuid"]), 200)


@case("teardown", order=95)
def teardown(t):
    """The last case: the VMs that run on hosts are destroyed through the
    API, so that no guest is left on the shared test host for the next
    tier."""
    srv = t.env.main()
    c = srv.login()

    with t.step("destroy every VM still on a host (API jobs): no domain is "
                "left on the test host"):
        vms = [v for v in expect(c.get("/vm-instances?limit=100000"),
                                 200).invs
               if v["hostUuid"] and v["state"] != "Destroyed"]
        for v in vms:
            j = c.delete_job("/vm-instances/" + v["uuid"])
            expect(j, 200)
            g = expect(c.get("/vm-instances/" + v["uuid"]), 200).invs[0]
            check(g["state"] == "Destroyed" and g["hostUuid"] is None,
                  "%s after destroy: %r" % (v["name"], g))
        doms = host_domains()
        check(not doms, "domains left on the test host: %r" % doms)
        t.tap.diag("destroyed %d VM(s)" % len(vms))
