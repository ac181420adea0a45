"""test_hosts.py: AddKVMHost and AddSftpBackupStorage for real: a test host
is a network namespace with its own sshd (root password login) and private
libvirt directories (tests/bed/bed.py); kvmstack serve bootstraps it over
SSH with libssh, runs playbooks/kvm-host.yaml and keeps the agent channel.
The KVM packages are installed beforehand by `make deps` (the hosts share
this machine's filesystem), so the package tasks find them present.
"""

import os
import re
import secrets
import shutil
import signal
import tempfile
import time
import urllib.parse
from pathlib import Path

from harness import REPO, Server, case, check, expect, wait_for
from bed import KVMSTACK_DIRS, Bed

PING_ARGS = ["--host-ping-interval", "300", "--host-ping-max-failure", "2"]
# The bed's hosts share this machine's files: what the playbook writes
# under these stays inside each test host.



def host_inv(c, uuid):
    r = c.get("/hosts/" + uuid)
    expect(r, 200)
    return r.invs[0]


def host_status(c, uuid):
    return host_inv(c, uuid)["status"]


def setup_cluster(c):
    z = c.create("/zones", {"name": "ZONE1"})
    cl = c.create("/clusters", {"name": "CLUSTER1", "zoneUuid": z["uuid"],
                                "hypervisorType": "KVM"})
    return z, cl


def add_host(c, cluster, h, name="HOST1", password=None, timeout=180):
    return c.job("/hosts/kvm", {
        "name": name, "clusterUuid": cluster["uuid"],
        "managementIp": h.ip, "sshPort": h.port,
        "password": password if password is not None else h.password},
        timeout=timeout)


def job_log(c, resource_uuid):
    r = c.get("/api-jobs?q=" + urllib.parse.quote(
        "resourceUuid=" + resource_uuid) + "&sort=-createDate")
    expect(r, 200)
    return r.invs


@case("hosts", 100)
def test_hosts(ctx):
    with Bed() as bed:
        pw1 = "Pw1-" + secrets.token_hex(8)
        h1 = bed.add_host("host1", password=pw1, with_libvirt=True,
                           private_dirs=KVMSTACK_DIRS)
        srv = Server("system-hosts", args=PING_ARGS).start()
        ctx.env.active.insert(0, srv)
        c = srv.login()
        answers = []

        with ctx.step("setup zone and cluster"):
            z, cl = setup_cluster(c)

        with ctx.step("add a host with a wrong password: clear error, "
                      "nothing stored"):
            r = add_host(c, cl, h1, password="wrong-" + pw1)
            answers.append(r.raw)
            expect(r, 400, field="password")
            hosts = c.get("/hosts").invs
            check(hosts == [], "a failed add left a host record: %r" % hosts)
            check("kvmstack-mgmt" not in h1.authorized_keys(),
                  "a failed add installed mgmt's key")

        with ctx.step("add HOST1: job succeeds, host Connected"):
            t0 = time.monotonic()
            r = add_host(c, cl, h1)
            answers.append(r.raw)
            expect(r, 200)
            inv = r.inv
            check(inv["status"] == "Connected", "status %r" % inv["status"])
            check(inv["managementIp"] == h1.ip, "ip %r" % inv)
            ctx.tap.diag("AddKVMHost took %.2f s" % (time.monotonic() - t0))
            uuid = inv["uuid"]

        with ctx.step("facts recorded, host key and agent"):
            inv = host_inv(c, uuid)
            answers.append(repr(inv).encode())
            check(inv["cpuNum"] and inv["cpuNum"] >= 1, "cpuNum %r" % inv)
            check(inv["totalMemoryCapacity"] > 64 * 2**20, "memory %r" % inv)
            check(inv["architecture"] == os.uname().machine, "arch %r" % inv)
            check(inv["libvirtVersion"] and inv["qemuVersion"],
                  "libvirt/qemu versions not recorded: %r" % inv)
            check(inv["sshHostKeyFingerprint"] == h1.fingerprint,
                  "fingerprint %r != %r" % (inv["sshHostKeyFingerprint"],
                                            h1.fingerprint))
            check(h1.pids_matching("kvmstack-agent --stdio"),
                  "no agent process on the host")
            check("kvmstack-mgmt" in h1.authorized_keys(),
                  "mgmt's key not in root's authorized_keys")

        with ctx.step("job log shows each task and a recap"):
            jobs = job_log(c, uuid)
            log = jobs[0]["log"]
            check("TASK [" in log and "PLAY RECAP" in log,
                  "job log lacks tasks or recap:\n%s" % log)
            check(re.search(r"failed=0", log), "recap: %s" % log)
            answers.extend(j["log"].encode() for j in jobs)

        with ctx.step("killing the agent: Disconnected, then Connected "
                      "again by itself"):
            before = host_inv(c, uuid)
            h1.kill_matching("kvmstack-agent", sig="KILL")
            wait_for("Disconnected", lambda: host_status(c, uuid)
                     in ("Disconnected", "Connecting"), timeout=10,
                     interval=0.02)
            wait_for("Connected again",
                     lambda: host_status(c, uuid) == "Connected", timeout=30)
            check(h1.pids_matching("kvmstack-agent --stdio"),
                  "agent not running again")
            after = host_inv(c, uuid)
            check(after["lastOpDate"] is not None and before, "inventory")

        with ctx.step("a stopped agent misses pings: Disconnected"):
            h1.kill_matching("kvmstack-agent", sig="STOP", wait=False)
            wait_for("Disconnected after missed pings",
                     lambda: host_status(c, uuid) != "Connected", timeout=10,
                     interval=0.02)
            err = host_inv(c, uuid).get("lastError") or ""
            h1.kill_matching("kvmstack-agent", sig="KILL")
            wait_for("Connected again",
                     lambda: host_status(c, uuid) == "Connected", timeout=30)
            ctx.tap.diag("lastError after the stop: %s" % err)

        with ctx.step("mgmt restart: the host comes back Connected"):
            check(srv.stop() == 0, "server did not stop cleanly")
            srv.start()
            c = srv.login()
            wait_for("Connected after restart",
                     lambda: host_status(c, uuid) == "Connected", timeout=30)

        with ctx.step("host key changed: HostKeyMismatch, re-trust "
                      "restores"):
            old_fp = h1.fingerprint
            h1.regenerate_host_key()
            check(h1.fingerprint != old_fp, "bed did not change the key")
            h1.kill_matching("kvmstack-agent", sig="KILL")
            wait_for("HostKeyMismatch",
                     lambda: host_status(c, uuid) == "HostKeyMismatch",
                     timeout=20)
            inv = host_inv(c, uuid)
            check("changed" in (inv.get("lastError") or ""),
                  "lastError does not explain: %r" % inv)
            check(inv["sshHostKeyFingerprint"] == old_fp,
                  "the stored fingerprint moved without a re-trust")
            r = c.action("/hosts/" + uuid, "reconnectHost")
            check(r.status >= 400, "reconnect with a changed key: %r" % r)
            r = c.action("/hosts/" + uuid, "trustHostKey",
                         {"sshHostKeyFingerprint": h1.fingerprint})
            expect(r, 200)
            check(r.inv["status"] == "Connected", "after re-trust %r" % r)
            check(r.inv["sshHostKeyFingerprint"] == h1.fingerprint,
                  "fingerprint not updated: %r" % r.inv)

        with ctx.step("reconnectHost answers Connected"):
            r = c.action("/hosts/" + uuid, "reconnectHost")
            expect(r, 200)
            check(r.inv["status"] == "Connected", "%r" % r)

        with ctx.step("mgmt's key removed on the host: Disconnected; "
                      "UpdateKVMHost with the password re-installs it"):
            h1.run("sed -i '/kvmstack-mgmt/d' /root/.ssh/authorized_keys")
            h1.kill_matching("kvmstack-agent", sig="KILL")
            wait_for("Disconnected (key refused)",
                     lambda: host_status(c, uuid) == "Disconnected",
                     timeout=20, interval=0.05)
            r = c.action("/hosts/" + uuid, "updateKVMHost",
                         {"password": pw1, "description": "re-keyed"})
            answers.append(r.raw)
            expect(r, 202)
            j = c.wait_job(r.body["location"], timeout=120)
            answers.append(j.raw)
            expect(j, 200)
            check(j.inv["status"] == "Connected"
                  and j.inv["description"] == "re-keyed", "%r" % j.inv)
            check("kvmstack-mgmt" in h1.authorized_keys(), "key missing")

        with ctx.step("delete and re-add: the playbook reports changed=0"):
            expect(c.delete("/hosts/" + uuid), 200)
            wait_for("agent gone",
                     lambda: not h1.pids_matching("kvmstack-agent --stdio"),
                     timeout=10)
            r = add_host(c, cl, h1)
            expect(r, 200)
            uuid = r.inv["uuid"]
            log = job_log(c, uuid)[0]["log"]
            check(re.search(r"changed=0 ", log) or "changed=0" in log,
                  "second run changed something:\n%s" % log)
            check("failed=0" in log, log)

        with ctx.step("the password never reaches the database, its WAL, "
                      "the log or an API answer"):
            needle = pw1.encode()
            for p in Path(srv.tmpdir).rglob("*"):
                if p.is_file():
                    check(needle not in p.read_bytes(),
                          "password found in %s" % p)
            check(needle not in srv.log.read_bytes(), "password in the log")
            for a in answers:
                check(needle not in a, "password in an API answer")
            for j in c.get("/api-jobs").invs:
                check(pw1 not in repr(j), "password in a job record")


@case("hosts-cut", 110)
def test_cut(ctx):
    """SSH cut in the middle of the playbook: a copy of the playbooks with
    a slow task in the middle lets the test cut the session at a known
    point."""
    with Bed() as bed:
        h = bed.add_host("cut1", with_libvirt=True,
                           private_dirs=KVMSTACK_DIRS)
        books = tempfile.mkdtemp(prefix="kvmstack-books-")
        try:
            shutil.copy(REPO / "playbooks" / "sftp-backup-storage.yaml",
                        books)
            text = (REPO / "playbooks" / "kvm-host.yaml").read_text()
            slow = ("    - name: slow test task\n"
                    "      command: sleep 3\n")
            marker = "\n  tasks:\n"
            check(marker in text, "kvm-host.yaml has no '  tasks:' line")
            text = text.replace(marker, marker + slow, 1)
            Path(books, "kvm-host.yaml").write_text(text)
            srv = Server("system-cut", args=PING_ARGS
                         + ["--playbooks", books]).start()
            ctx.env.active.insert(0, srv)
            c = srv.login()
            z, cl = setup_cluster(c)

            with ctx.step("cut SSH during a task: the job fails naming it"):
                r = c.post("/hosts/kvm", {
                    "name": "CUT1", "clusterUuid": cl["uuid"],
                    "managementIp": h.ip, "password": h.password})
                expect(r, 202)
                loc = r.body["location"]
                wait_for("the slow task to start", lambda: "slow test task"
                         in (c.get(loc).body or {}).get("progress", ""),
                         timeout=60)
                h.kill_matching(r"sshd: root", sig="KILL")
                j = c.wait_job(loc, timeout=60)
                check(j.status >= 400, "job did not fail: %r" % j)
                check("slow test task" in j.error.get("details", ""),
                      "the failure does not name the task: %r" % j)
                check(c.get("/hosts").invs == [],
                      "the failed add left a record")

            with ctx.step("re-add after the cut succeeds"):
                r = c.job("/hosts/kvm", {
                    "name": "CUT1", "clusterUuid": cl["uuid"],
                    "managementIp": h.ip, "password": h.password},
                    timeout=120)
                expect(r, 200)
                check(r.inv["status"] == "Connected", "%r" % r.inv)
        finally:
            shutil.rmtree(books, ignore_errors=True)


@case("backup-storage", 120)
def test_backup_storage(ctx):
    with Bed() as bed:
        h = bed.add_host("bs1", private_dirs=KVMSTACK_DIRS)
        folder = "/tmp/kvmstack-bs-" + secrets.token_hex(4)
        srv = Server("system-bs", args=PING_ARGS).start()
        ctx.env.active.insert(0, srv)
        c = srv.login()
        try:
            with ctx.step("add SFTP backup storage: Connected, capacity"):
                r = c.job("/backup-storage/sftp", {
                    "name": "BACKUP-STORAGE1", "url": folder,
                    "hostname": h.ip, "password": h.password}, timeout=120)
                expect(r, 200)
                inv = r.inv
                check(inv["status"] == "Connected", "%r" % inv)
                check(inv["totalCapacity"] > 0
                      and 0 < inv["availableCapacity"]
                      <= inv["totalCapacity"], "capacity %r" % inv)
                check(os.path.isdir(folder), "folder not created")

            with ctx.step("the storage host's sshd stops: Disconnected; "
                          "back: Connected"):
                uuid = c.get("/backup-storage").invs[0]["uuid"]

                def bs_status():
                    return c.get("/backup-storage/" + uuid).invs[0]["status"]

                h.stop_sshd()
                wait_for("Disconnected", lambda: bs_status()
                         == "Disconnected", timeout=20)
                err = c.get("/backup-storage/" + uuid).invs[0]["lastError"]
                check(err, "no reason given")
                h.start_sshd()
                wait_for("Connected", lambda: bs_status() == "Connected",
                         timeout=20)

            with ctx.step("wrong password: refused, nothing stored"):
                r = c.job("/backup-storage/sftp", {
                    "name": "BS2", "url": folder + "-2",
                    "hostname": h.ip, "password": "nope"}, timeout=60)
                expect(r, 400, field="password")
                check(len(c.get("/backup-storage").invs) == 1,
                      "a failed add left a record")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(folder + "-2", ignore_errors=True)
