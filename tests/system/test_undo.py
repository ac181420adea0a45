"""test_undo.py: a cluster-wide attach that fails on one host undoes what it
did on the others (mgmt/hostsync.c each_cluster_host()).

Two bed hosts in one cluster.  An L2NoVlanNetwork over 'data1' is attached
while only one of them has data1; NFS primary storage (the bind-mount
stand-in of test_vms.py: this kernel has no NFS client) is attached while
one host's nfs_mount_command fails.  The job must fail naming the host and
the reason, the other host must be left as it was (no bridge, data1 up with
its address; nothing mounted), the attachment must not be recorded and the
database must not change.  mgmt visits the hosts in an order the test does
not choose, so every failure is made twice, once with each host as the bad
one: whatever the order, one of the two runs has the good host done before
the bad one fails, and the test checks from the job logs that the undo ran
at least once.  Then both hosts are fixed and the same attach succeeds.
"""

import shutil
import tempfile
import urllib.parse
from pathlib import Path

from harness import Server, case, check, db_dump, dump_diff, expect
from bed import KVMSTACK_DIRS, Bed

ARGS = ["--host-ping-interval", "500", "--host-ping-max-failure", "2",
        "--vm-domain-type", "qemu"]
NFS_URL = "192.168.0.212:/usr/local/zstack/nfs_root"
IFACE = "data1"
BRIDGE = "br_data1"
# data1's address: inside one host's namespace only, in the bed's range
# (10.250.0.0/30 is never a bed host's subnet: those are 10.250.1-254).
IFACE_ADDR = "10.250.0.1/30"
# A stand-in export that does not exist: that host's mount command fails.
MISSING = "/nonexistent-kvmstack-undo-standin"


def set_mount_command(h, standin):
    h.run("mkdir -p /etc/kvmstack && printf '%%s\\n' "
          "'# NFS stand-in: this kernel has no NFS client' "
          "'nfs_mount_command = mount --bind %s{export} {path}' "
          "> /etc/kvmstack/agent.conf" % standin)


def give_iface(h):
    h.run("ip link add %s type veth peer name %sp && ip addr add %s dev %s "
          "&& ip link set %s up && ip link set %sp up"
          % (IFACE, IFACE, IFACE_ADDR, IFACE, IFACE, IFACE))


def take_iface(h):
    h.run("ip link del %s" % IFACE)


def links(h):
    return h.run("ip -o link").stdout


def mounted(h, path):
    return path in h.run("cat /proc/self/mountinfo").stdout.split()


def check_iface_intact(h):
    """data1 on 'h' is up, in no bridge, and has its address."""
    out = h.run("ip -o link show dev %s" % IFACE).stdout
    check("master" not in out, "%s: %s is still a bridge port: %s"
          % (h.name, IFACE, out))
    check("state UP" in out or ",UP" in out, "%s: %s is not up: %s"
          % (h.name, IFACE, out))
    addrs = h.run("ip -o -4 addr show dev %s" % IFACE).stdout
    check(IFACE_ADDR in addrs, "%s: %s lost %s: %r"
          % (h.name, IFACE, IFACE_ADDR, addrs))


def job(c, path, timeout=60):
    """POSTs an attach job; returns (final Resp, the job's log)."""
    r = c.post(path, {})
    expect(r, 202)
    loc = r.body["location"]
    final = c.wait_job(loc, timeout)
    uuid = loc.rstrip("/").rsplit("/", 1)[-1]
    q = c.get("/api-jobs?q=" + urllib.parse.quote("uuid=" + uuid))
    expect(q, 200)
    check(len(q.invs) == 1, "job %s: %r" % (uuid, q))
    return final, q.invs[0]["log"] or ""


def undo_ran(log, good, bad):
    """True if the job log shows 'good' done before 'bad' failed."""
    g = log.find("on host '%s'" % good)
    b = log.find("on host '%s'" % bad)
    return g >= 0 and b > g


def snapshot(srv):
    # A host's ping bookkeeping changes on its own.
    return db_dump(srv.db, blank={"host": ("status", "lastOpDate",
                                           "lastError")})


@case("undo", 300)
def test_undo(ctx):
    standin = tempfile.mkdtemp(prefix="kvmstack-nfs-standin-")
    Path(standin + "/usr/local/zstack/nfs_root").mkdir(parents=True)
    try:
        with Bed() as bed:
            hosts = [bed.add_host(n, with_libvirt=True, private_dirs=KVMSTACK_DIRS)
                     for n in ("undo-a", "undo-b")]
            for h in hosts:
                set_mount_command(h, standin)
            srv = Server("system-undo", args=ARGS).start()
            ctx.env.active.insert(0, srv)
            run_undo(ctx, srv, srv.login(), hosts, standin)
    finally:
        shutil.rmtree(standin, ignore_errors=True)


def run_undo(ctx, srv, c, hosts, standin):
    a, b = hosts
    R = {}
    names = {a.name: "HOST-A", b.name: "HOST-B"}

    with ctx.step("two hosts added to one cluster, both Connected"):
        z = c.create("/zones", {"name": "ZONE1"})
        cl = c.create("/clusters", {"name": "CLUSTER1", "zoneUuid": z["uuid"],
                                    "hypervisorType": "KVM"})
        R.update(zone=z["uuid"], cluster=cl["uuid"])
        for h in hosts:
            r = c.job("/hosts/kvm", {"name": names[h.name],
                                     "clusterUuid": cl["uuid"],
                                     "managementIp": h.ip,
                                     "sshPort": h.port,
                                     "password": h.password}, timeout=180)
            expect(r, 200)
            check(r.inv["status"] == "Connected", "%r" % r.inv)

    l2_path = None
    undone = []

    def l2_attempt(good, bad):
        before = snapshot(srv)
        l2_before = c.get("/l2-networks/" + R["l2"]).invs[0]
        r, log = job(c, l2_path)
        check(r.status >= 400, "the attach did not fail: %r" % r)
        details = r.error.get("details", "")
        check(IFACE in details, "the error does not name %s: %r"
              % (IFACE, r))
        check("host '%s'" % names[bad.name] in details,
              "the error does not name %s: %r" % (names[bad.name], r))
        for h in (good, bad):
            check(BRIDGE not in links(h), "%s: a bridge was left: %s"
                  % (h.name, links(h)))
        check(IFACE not in links(bad), "%s has %s" % (bad.name, IFACE))
        check_iface_intact(good)
        l2 = c.get("/l2-networks/" + R["l2"])
        expect(l2, 200)
        check(R["cluster"] not in l2.invs[0]["attachedClusterUuids"],
              "the attachment was recorded: %r" % l2.invs[0])
        check(l2.invs[0] == l2_before, "the L2 changed: %r -> %r"
              % (l2_before, l2.invs[0]))
        diff = dump_diff(before, snapshot(srv))
        check(not diff, "the failed attach changed the database:\n" + diff)
        if undo_ran(log, names[good.name], names[bad.name]):
            undone.append(good.name)
        ctx.tap.diag("%s good, %s without %s: %s; job log:\n%s"
                     % (names[good.name], names[bad.name], IFACE,
                        details, log.strip()))

    with ctx.step("L2 over data1, only HOST-A has data1: the attach fails "
                  "naming HOST-B and data1; HOST-A keeps no bridge, data1 "
                  "up with its address; not attached, database unchanged"):
        give_iface(a)
        l2 = c.create("/l2-networks/no-vlan", {
            "name": "UNDO-L2", "zoneUuid": R["zone"],
            "physicalInterface": IFACE})
        R["l2"] = l2["uuid"]
        l2_path = "/l2-networks/%s/clusters/%s" % (R["l2"], R["cluster"])
        l2_attempt(a, b)

    with ctx.step("the same with the roles swapped (only HOST-B has data1)"):
        take_iface(a)
        give_iface(b)
        l2_attempt(b, a)

    with ctx.step("the undo ran: in one of the two runs the host with data1 "
                  "had its bridge made before the other failed"):
        check(undone, "neither job log shows a host done before the failing "
              "one: the undo path was not exercised")
        ctx.tap.diag("undo exercised on: %s" % ", ".join(undone))

    with ctx.step("data1 on both hosts: the same attach succeeds, bridges "
                  "on both hosts with data1 as their port"):
        give_iface(a)
        r, log = job(c, l2_path)
        expect(r, 200)
        check(R["cluster"] in r.inv["attachedClusterUuids"], "%r" % r.inv)
        for h in hosts:
            check(BRIDGE in links(h), "%s: no bridge: %s" % (h.name,
                                                              links(h)))
            out = h.run("ip -o link show dev %s" % IFACE).stdout
            check("master %s" % BRIDGE in out, "%s: %s not in %s: %s"
                  % (h.name, IFACE, BRIDGE, out))
            addrs = h.run("ip -o -4 addr show dev %s" % BRIDGE).stdout
            check(IFACE_ADDR in addrs, "%s: %s did not move to %s: %r"
                  % (h.name, IFACE_ADDR, BRIDGE, addrs))

    with ctx.step("detach and delete the L2: bridges gone, data1 has its "
                  "address back"):
        expect(c.delete_job(l2_path), 200)
        for h in hosts:
            check(BRIDGE not in links(h), "%s: bridge left: %s"
                  % (h.name, links(h)))
            check_iface_intact(h)
        r = c.delete("/l2-networks/" + R["l2"])
        if r.status == 202:
            r = c.wait_job(r.body["location"])
        expect(r, 200)
        check(c.get("/l2-networks/" + R["l2"]).status == 404,
              "the L2 is still there")

    ps_path = None

    def ps_attempt(good, bad):
        set_mount_command(good, standin)
        set_mount_command(bad, MISSING)
        before = snapshot(srv)
        ps_before = c.get("/primary-storage/" + R["ps"]).invs[0]
        had_dir = bad.run("test -e %s" % R["mount"],
                          check=False).returncode == 0
        r, log = job(c, ps_path)
        check(r.status >= 400, "the attach did not fail: %r" % r)
        details = r.error.get("details", "")
        check("host '%s'" % names[bad.name] in details,
              "the error does not name %s: %r" % (names[bad.name], r))
        # The reason: the mount command failed, where, and mount's own
        # words naming the missing source (the agent gives the last lines
        # of its stderr: util-linux ends with a hint about dmesg).
        check("storage.mount" in details and R["mount"] in details
              and "'mount' exited with status" in details
              and MISSING in details,
              "the error does not give the reason: %r" % r)
        for h in hosts:
            check(not mounted(h, R["mount"]), "%s: %s is mounted"
                  % (h.name, R["mount"]))
        if not had_dir:
            check(bad.run("test -e %s" % R["mount"], check=False)
                  .returncode != 0, "%s: the failed mount left the "
                  "directory it made, %s" % (bad.name, R["mount"]))
        ps = c.get("/primary-storage/" + R["ps"])
        expect(ps, 200)
        check(R["cluster"] not in ps.invs[0]["attachedClusterUuids"],
              "the attachment was recorded: %r" % ps.invs[0])
        check(ps.invs[0] == ps_before, "the primary storage changed: "
              "%r -> %r" % (ps_before, ps.invs[0]))
        diff = dump_diff(before, snapshot(srv))
        check(not diff, "the failed attach changed the database:\n" + diff)
        if undo_ran(log, names[good.name], names[bad.name]):
            undone.append(good.name)
        ctx.tap.diag("%s good, %s failing: %s; job log:\n%s"
                     % (names[good.name], names[bad.name], details,
                        log.strip()))

    del undone[:]
    with ctx.step("NFS primary storage, HOST-B's mount command fails: the "
                  "attach fails naming HOST-B and the reason; nothing "
                  "mounted on HOST-A; not attached, database unchanged"):
        ps = c.create("/primary-storage/nfs", {
            "name": "UNDO-PS", "zoneUuid": R["zone"], "url": NFS_URL})
        R.update(ps=ps["uuid"], mount=ps["mountPath"])
        ps_path = "/clusters/%s/primary-storage/%s" % (R["cluster"],
                                                       R["ps"])
        ps_attempt(a, b)

    with ctx.step("the same with the roles swapped (HOST-A's mount fails)"):
        ps_attempt(b, a)

    with ctx.step("the undo ran: in one of the two runs the good host had "
                  "mounted before the other failed"):
        check(undone, "neither job log shows a host done before the failing "
              "one: the undo path was not exercised")
        ctx.tap.diag("undo exercised on: %s" % ", ".join(undone))

    with ctx.step("both mount commands work: the same attach succeeds, "
                  "mounted on both hosts"):
        for h in hosts:
            set_mount_command(h, standin)
        r, log = job(c, ps_path)
        expect(r, 200)
        check(R["cluster"] in r.inv["attachedClusterUuids"]
              and r.inv["status"] == "Connected"
              and r.inv["totalCapacity"] > 0, "%r" % r.inv)
        for h in hosts:
            check(mounted(h, R["mount"]), "%s: %s not mounted"
                  % (h.name, R["mount"]))
