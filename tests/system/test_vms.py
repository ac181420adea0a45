"""test_vms.py: issue 4 end to end on a bootstrapped test host: NFS primary
storage, SFTP backup storage, the test image downloaded over HTTP, L2
bridges, and the VM lifecycle through libvirt (qemu under TCG).

Stand-ins, named as the test bed requires (../shared/TESTBED.md):
- NFS: this kernel has no NFS client.  The host's agent.conf sets
  nfs_mount_command to a bind mount of a shared directory standing in for
  the export; the agent's storage.mount code path is unchanged.
- VLAN: this kernel lacks 802.1q.  A VLAN L2 must fail with an error that
  says so; the private L2 is a VXLAN network here.
- The tutorial's ttylinux is build/images/test-guest.qcow2 (`make images`),
  served by a test HTTP server inside the backup-storage host.
"""

import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from harness import (REPO, Server, build_dir, case, check, expect,
                     wait_for)
from bed import KVMSTACK_DIRS, Bed
import httpserve

ARGS = ["--host-ping-interval", "500", "--host-ping-max-failure", "2",
        "--vm-domain-type", "qemu", "--vm-stop-timeout", "20000"]
NFS_URL = "192.168.0.212:/usr/local/zstack/nfs_root"



def vm_inv(c, uuid):
    r = c.get("/vm-instances/" + uuid)
    expect(r, 200)
    return r.invs[0]


def console(c, uuid):
    r = c.get("/vm-instances/%s/console-log" % uuid)
    if r.status != 200:
        return ""
    return (r.inv or {}).get("text", "")


def domains(h):
    out = h.run("virsh list --all --name", check=False).stdout
    return [l.strip() for l in out.splitlines() if l.strip()]


def running_domains(h):
    out = h.run("virsh list --state-running --name", check=False).stdout
    return [l.strip() for l in out.splitlines() if l.strip()]


@case("vms", 200)
def test_vms(ctx):
    image = build_dir() / "images" / "test-guest.qcow2"
    standin = tempfile.mkdtemp(prefix="kvmstack-nfs-standin-")
    export = Path(standin + "/usr/local/zstack/nfs_root")
    export.mkdir(parents=True)
    try:
        with Bed() as bed:
            h = bed.add_host("kvm1", with_libvirt=True, private_dirs=KVMSTACK_DIRS)
            h.run("mkdir -p /etc/kvmstack && printf '%%s\\n' "
                  "'# NFS stand-in: this kernel has no NFS client' "
                  "'nfs_mount_command = mount --bind %s{export} {path}' "
                  "> /etc/kvmstack/agent.conf" % standin)
            h.run("ip link add data0 type veth peer name data0p && "
                  "ip link set data0 up && ip link set data0p up")
            srv = Server("system-vms", args=ARGS).start()
            ctx.env.active.insert(0, srv)
            c = srv.login()
            R = {}
            run_vms(ctx, c, h, image, export, R)
    finally:
        shutil.rmtree(standin, ignore_errors=True)


def run_vms(ctx, c, h, image, export, R):
    with ctx.step("the test image exists (make images)"):
        check(image.exists(), "%s is missing: run make images" % image)

    with ctx.step("zone, cluster, host Connected"):
        z = c.create("/zones", {"name": "ZONE1"})
        cl = c.create("/clusters", {"name": "CLUSTER1", "zoneUuid": z["uuid"],
                                    "hypervisorType": "KVM"})
        r = c.job("/hosts/kvm", {"name": "HOST1", "clusterUuid": cl["uuid"],
                                 "managementIp": h.ip,
                                 "password": h.password}, timeout=180)
        expect(r, 200)
        R.update(zone=z["uuid"], cluster=cl["uuid"], host=r.inv["uuid"])

    with ctx.step("NFS primary storage (stand-in) mounted on the host"):
        ps = c.create("/primary-storage/nfs", {
            "name": "PRIMARY-STORAGE1", "zoneUuid": R["zone"],
            "url": NFS_URL})
        r = c.job("/clusters/%s/primary-storage/%s" % (R["cluster"],
                                                       ps["uuid"]), {})
        expect(r, 200)
        check(r.inv["status"] == "Connected" and r.inv["totalCapacity"] > 0,
              "%r" % r.inv)
        mounts = h.run("cat /proc/self/mountinfo").stdout
        check(r.inv["mountPath"] in mounts, "not mounted: %s" % mounts)
        (export / "standin-marker").write_text("x")
        check(h.run("test -e %s/standin-marker" % r.inv["mountPath"],
                    check=False).returncode == 0,
              "the mount does not show the stand-in export")
        R["ps"] = ps["uuid"]
        R["mount"] = r.inv["mountPath"]

    with ctx.step("SFTP backup storage and the image downloaded over HTTP"):
        r = c.job("/backup-storage/sftp", {
            "name": "BACKUP-STORAGE1", "url": "/backupStorage",
            "hostname": h.ip, "password": h.password}, timeout=120)
        expect(r, 200)
        bs = r.inv
        expect(c.post("/zones/%s/backup-storage/%s" % (R["zone"],
                                                       bs["uuid"]), {}), 200)
        base = httpserve.serve(h, str(image.parent))
        t0 = time.monotonic()
        r = c.job("/images", {
            "name": "ttylinux", "format": "qcow2",
            "mediaType": "RootVolumeTemplate", "platform": "Linux",
            "url": base + "/test-guest.qcow2",
            "backupStorageUuids": [bs["uuid"]]}, timeout=120)
        expect(r, 200)
        img = r.inv
        check(img["status"] == "Ready", "%r" % img)
        want = (image.parent / "test-guest.qcow2.sha256").read_text().split()
        check(img["sha256Sum"] == want[0], "sha256 %r != %r"
              % (img["sha256Sum"], want[0]))
        check(img["actualSize"] == image.stat().st_size, "size %r" % img)
        ctx.tap.diag("AddImage over HTTP took %.2f s"
                     % (time.monotonic() - t0))
        R["image"] = img["uuid"]

    with ctx.step("an image whose declared format is wrong ends in Error"):
        r = c.job("/images", {
            "name": "wrong-format", "format": "raw",
            "url": base + "/test-guest.qcow2",
            "backupStorageUuids": [bs["uuid"]]}, timeout=60)
        check(r.status >= 400, "%r" % r)
        check("qcow2" in r.error.get("details", ""), "%r" % r)
        bad = c.find("/images", "wrong-format")
        check(bad and bad["status"] == "Error" and bad["lastError"],
              "%r" % bad)

    with ctx.step("a VLAN L2 fails on this kernel with an error saying so"):
        l2 = c.create("/l2-networks/vlan", {
            "name": "VLAN-L2", "zoneUuid": R["zone"],
            "physicalInterface": "data0", "vlan": 100})
        r = c.job("/l2-networks/%s/clusters/%s" % (l2["uuid"], R["cluster"]),
                  {})
        check(r.status >= 400, "%r" % r)
        check("802.1q" in r.error.get("details", ""), "%r" % r)
        check(not l2["uuid"] in [x for x in
                                 c.find("/l2-networks", "VLAN-L2")
                                 ["attachedClusterUuids"]], "attached")
        links = h.run("ip -o link").stdout
        check("data0.100" not in links, "a VLAN link was left: %s" % links)

    with ctx.step("NoVlan and VXLAN L2s attached: bridges on the host"):
        pub = c.create("/l2-networks/no-vlan", {
            "name": "PUBLIC-MANAGEMENT-L2", "zoneUuid": R["zone"],
            "physicalInterface": "data0"})
        expect(c.job("/l2-networks/%s/clusters/%s" % (pub["uuid"],
                                                      R["cluster"]), {}),
               200)
        # The tutorial's PRIVATE-L2 is VLAN 100; VXLAN stands in for it.
        priv = c.create("/l2-networks/vxlan", {
            "name": "PRIVATE-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0", "vni": 100})
        expect(c.job("/l2-networks/%s/clusters/%s" % (priv["uuid"],
                                                      R["cluster"]), {}),
               200)
        links = h.run("ip -o link").stdout
        check("br_data0" in links and "br_vx_100" in links,
              "bridges missing: %s" % links)
        l3 = c.create("/l3-networks", {"name": "PRIVATE-L3",
                                       "l2NetworkUuid": priv["uuid"],
                                       "dnsDomain": "tutorials.zstack.org"})
        expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % l3["uuid"], {
            "name": "PRIVATE-IP-RANGE", "networkCidr": "10.0.0.0/24"}), 200)
        io = c.create("/instance-offerings", {
            "name": "512M-512HZ", "cpuNum": 1, "cpuSpeed": 512,
            "memorySize": 256 * 2**20})
        R.update(l3=l3["uuid"], io=io["uuid"], pub=pub["uuid"])

    vm_params = {"instanceOfferingUuid": R["io"], "imageUuid": R["image"],
                 "l3NetworkUuids": [R["l3"]]}

    with ctx.step("create VM1: Running, guest booted on its console"):
        t0 = time.monotonic()
        r = c.job("/vm-instances", dict(vm_params, name="VM1",
                                        hostname="vm1"), timeout=180)
        expect(r, 200)
        vm = r.inv
        check(vm["state"] == "Running" and vm["hostUuid"] == R["host"],
              "%r" % vm)
        ctx.tap.diag("CreateVmInstance to Running: %.2f s (first VM: "
                     "image copied to the cache)" % (time.monotonic() - t0))
        R["vm1"] = vm["uuid"]
        check(vm["uuid"] in running_domains(h), "no domain on the host")
        xml = h.run("virsh dumpxml %s" % vm["uuid"]).stdout
        check("type='qemu'" in xml, "not a TCG domain")
        check(vm["vmNics"][0]["mac"] in xml, "MAC not in the domain")
        wait_for("GUEST-READY on the console",
                 lambda: "GUEST-READY" in console(c, vm["uuid"]),
                 timeout=90)
        cached = h.run("ls %s/imagecache" % R["mount"]).stdout
        check(R["image"] in cached, "image not cached: %s" % cached)

    with ctx.step("stop (ACPI) then start again"):
        r = c.request("PUT", "/vm-instances/%s/actions" % R["vm1"],
                      body={"stopVmInstance": {}})
        expect(r, 202)
        j = c.wait_job(r.body["location"], timeout=60)
        expect(j, 200)
        check(j.inv["state"] == "Stopped", "%r" % j.inv)
        check(R["vm1"] not in running_domains(h), "domain still runs")
        r = c.request("PUT", "/vm-instances/%s/actions" % R["vm1"],
                      body={"startVmInstance": {}})
        expect(r, 202)
        j = c.wait_job(r.body["location"], timeout=120)
        expect(j, 200)
        check(j.inv["state"] == "Running", "%r" % j.inv)
        wait_for("GUEST-READY after start",
                 lambda: "GUEST-READY" in console(c, R["vm1"]), timeout=90)

    with ctx.step("reboot"):
        r = c.request("PUT", "/vm-instances/%s/actions" % R["vm1"],
                      body={"rebootVmInstance": {}})
        expect(r, 202)
        j = c.wait_job(r.body["location"], timeout=120)
        expect(j, 200)
        check(j.inv["state"] == "Running", "%r" % j.inv)
        wait_for("the guest to boot again",
                 lambda: console(c, R["vm1"]).count("GUEST-UP") >= 2
                 or "GUEST-READY" in console(c, R["vm1"]), timeout=90)

    with ctx.step("kill the agent: the VM keeps running, Unknown, then "
                  "reconciled Running"):
        qemu_before = h.pids_matching("qemu-system")
        h.kill_matching("kvmstack-agent", sig="KILL")
        wait_for("VM Unknown", lambda: vm_inv(c, R["vm1"])["state"]
                 == "Unknown", timeout=20, interval=0.02)
        wait_for("VM Running again", lambda: vm_inv(c, R["vm1"])["state"]
                 == "Running", timeout=60)
        check(h.pids_matching("qemu-system") == qemu_before,
              "qemu was restarted or killed")

    with ctx.step("a domain destroyed behind mgmt's back: the VM becomes "
                  "Stopped through the event"):
        h.run("virsh destroy %s" % R["vm1"])
        wait_for("VM Stopped", lambda: vm_inv(c, R["vm1"])["state"]
                 == "Stopped", timeout=20)

    with ctx.step("destroy: domain and volume gone, IP released"):
        vm = vm_inv(c, R["vm1"])
        vol = vm["rootVolumePath"]
        r = c.delete("/vm-instances/" + R["vm1"])
        if r.status == 202:
            r = c.wait_job(r.body["location"], timeout=60)
        expect(r, 200)
        vm = vm_inv(c, R["vm1"])
        check(vm["state"] == "Destroyed", "%r" % vm)
        check(R["vm1"] not in domains(h), "domain left: %r" % domains(h))
        check(h.run("test -e %s" % vol, check=False).returncode != 0,
              "volume %s left" % vol)
        check(all(n["ip"] is None for n in vm["vmNics"]), "IP kept")

    with ctx.step("a failed create leaves no volume, IP or domain behind"):
        host_before = c.get("/hosts/" + R["host"]).invs[0]
        used_before = c.get("/l3-networks/" + R["l3"]).invs[0]
        h.run("ip link del br_vx_100")  # vm.start will find no bridge
        r = c.job("/vm-instances", dict(vm_params, name="VM-FAIL"),
                  timeout=120)
        check(r.status >= 400, "create did not fail: %r" % r)
        failed = c.find("/vm-instances", "VM-FAIL")
        check(failed["state"] == "Error" and failed["lastError"],
              "%r" % failed)
        check(all(n["ip"] is None for n in failed["vmNics"]), "IP kept")
        check(failed["uuid"] not in domains(h), "domain left")
        check(h.run("ls %s/rootvolumes" % R["mount"],
                    check=False).stdout.find(failed["uuid"]) < 0,
              "volume left")
        host_after = c.get("/hosts/" + R["host"]).invs[0]
        for k in ("availableCpuCapacity", "availableMemoryCapacity"):
            check(host_after[k] == host_before[k], "%s %r -> %r"
                  % (k, host_before[k], host_after[k]))
        check(used_before is not None, "l3")
