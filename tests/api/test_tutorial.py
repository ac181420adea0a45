"""The elastic port-forwarding tutorial (tests/../shared/seed/elastic-port-
forwarding-tutorial.md) through the REST API, in its order and with its
names, for real on the test host that tests/run borrows from tests/bed
(harness.py: KVMSTACK_TEST_*), then the rules of port-forwarding rules, VM
lifecycle and the generic query/get/update/delete behaviour on what it
built.

Stand-ins, as the test bed requires (tests/system/test_vms.py does the
same):
- NFS: this kernel has no NFS client; the host's agent bind-mounts a local
  folder instead of 192.168.0.212:/usr/local/zstack/nfs_root (which is
  never contacted).
- VLAN: this kernel lacks 802.1q; the tutorial's VLAN 100 attach must fail
  saying so, and PRIVATE-L2 is VXLAN VNI 100 instead.
- ttylinux is build/images/test-guest.qcow2 (file://); VIRTUAL-ROUTER is
  build/images/kvmstack-vr.qcow2 when built, else the same file.
- PUBLIC-MANAGEMENT-L2 is on the host's spare interface (data0), not on
  eth0, its management link.
The first VM started on PRIVATE-L3 makes its virtual router (a third TCG
guest, from VIRTUAL-ROUTER); every rule change is applied by it before the
API answers.  Whether traffic really flows through the VIPs is
tests/e2e's (SSH from client namespaces); here PUBLIC-MANAGEMENT-L2's
interface is a dead end inside the host.  Public addresses are TEST-NET-2
(198.51.100.230-240, gateway .1) in place of the tutorial's 192.168.0.x,
and the DNS server 198.51.100.53 stands in for 8.8.8.8: tests never point
at a public resolver (TESTBED.md).

Every step is one TAP line; a failed step stops the case (later steps need
its result).  The case leaves VM1 and the router Running on HOST1 (the
restart case checks that they stay so; the teardown case destroys
them)."""

import ipaddress
import os
import time
import urllib.parse

from harness import (NFS_EXPORT, NFS_URL, TEST_NFS_STANDIN, case, check,
                     db_dump, db_query, dump_diff, expect, host_domains,
                     host_run, need_public_if, need_test_host, rand_uuid,
                     test_image, vr_image)


def ip_in(ip, first, last):
    a = ipaddress.IPv4Address(ip)
    return ipaddress.IPv4Address(first) <= a <= ipaddress.IPv4Address(last)


def q(expr):
    return "q=" + urllib.parse.quote(expr)


def host_links():
    r = host_run("ip -o link", check_rc=False)
    return None if r is None else r.stdout


def check_host_capacity(c, host):
    """The host's available capacity is its total less what the VMs placed
    on it (user VMs and virtual routers) reserve."""
    h = expect(c.get("/hosts/" + host), 200).invs[0]
    vms = [v for v in expect(c.get("/vm-instances?limit=100000"), 200).invs
           if v["hostUuid"] == host and v["state"] not in ("Destroyed",
                                                           "Stopped",
                                                           "Error")]
    cpu = sum(v["cpuNum"] for v in vms)
    mem = sum(v["memorySize"] for v in vms)
    check(h["totalCpuCapacity"] - h["availableCpuCapacity"] == cpu
          and h["totalMemoryCapacity"] - h["availableMemoryCapacity"] == mem,
          "host capacity: total-available = %d vCPUs, %d bytes; the %d "
          "VM(s) on it (%s) take %d vCPUs, %d bytes" % (
              h["totalCpuCapacity"] - h["availableCpuCapacity"],
              h["totalMemoryCapacity"] - h["availableMemoryCapacity"],
              len(vms), ", ".join(v["name"] for v in vms), cpu, mem))
    return vms


@case("tutorial", order=10)
def tutorial(t):
    srv = t.env.main()
    c = srv.login()
    S = t.env.shared
    R = {}

    with t.step("create zone ZONE1"):
        ruuid = rand_uuid()
        z = c.create("/zones", {"name": "ZONE1", "resourceUuid": ruuid,
                                "description": "tutorial zone"})
        check(z["uuid"] == ruuid, "resourceUuid not used: %r" % z)
        check(z["name"] == "ZONE1" and z["state"] == "Enabled"
              and len(z["uuid"]) == 32, "zone inventory: %r" % z)
        R["zone"] = z["uuid"]

    with t.step("create cluster CLUSTER1 (KVM)"):
        cl = c.create("/clusters", {"name": "CLUSTER1",
                                    "zoneUuid": R["zone"],
                                    "hypervisorType": "KVM"})
        check(cl["zoneUuid"] == R["zone"] and cl["hypervisorType"] == "KVM",
              "cluster inventory: %r" % cl)
        R["cluster"] = cl["uuid"]

    with t.step("add host HOST1 (the test host) as an API job: it ends "
                "Connected with its capacity"):
        ip, password = need_test_host()
        j = c.job("/hosts/kvm", {"name": "HOST1",
                                 "clusterUuid": R["cluster"],
                                 "managementIp": ip, "username": "root",
                                 "password": password}, timeout=180)
        expect(j, 200)
        h = j.inv
        check(h and h["name"] == "HOST1" and h["managementIp"] == ip
              and h["clusterUuid"] == R["cluster"]
              and h["zoneUuid"] == R["zone"],
              "host inventory: %r" % j)
        check(h["status"] == "Connected" and h["state"] == "Enabled",
              "host status/state %r/%r, expected Connected/Enabled: %r"
              % (h["status"], h["state"], h))
        check(h["totalCpuCapacity"] > 0 and h["totalMemoryCapacity"] > 0
              and h["availableCpuCapacity"] == h["totalCpuCapacity"]
              and h["availableMemoryCapacity"] == h["totalMemoryCapacity"],
              "host capacity: %r" % h)
        check("password" not in h and password not in j.raw.decode(),
              "the host inventory shows the password")
        g = expect(c.get("/hosts/" + h["uuid"]), 200)
        check(g.invs[0]["status"] == "Connected", "GET host: %r" % g)
        R["host"], R["host_ip"] = h["uuid"], h["managementIp"]

    with t.step("add NFS PRIMARY-STORAGE1 (%s, mounted through the test "
                "host's NFS stand-in) and attach it to CLUSTER1 as an API "
                "job: Connected, with capacity" % NFS_URL):
        ps = c.create("/primary-storage/nfs", {
            "name": "PRIMARY-STORAGE1", "zoneUuid": R["zone"],
            "url": NFS_URL})
        check(ps["type"] == "NFS" and ps["url"] == NFS_URL
              and ps["attachedClusterUuids"] == [],
              "primary storage inventory: %r" % ps)
        j = c.job("/clusters/%s/primary-storage/%s"
                  % (R["cluster"], ps["uuid"]), {})
        expect(j, 200)
        p = j.inv
        check(p["uuid"] == ps["uuid"]
              and p["attachedClusterUuids"] == [R["cluster"]],
              "attach reply: %r" % j)
        check(p["status"] == "Connected" and p["totalCapacity"] > 0
              and 0 < p["availableCapacity"] <= p["totalCapacity"],
              "primary storage after the mount: %r" % p)
        expect(c.post("/clusters/%s/primary-storage/%s"
                      % (R["cluster"], ps["uuid"])), 409)
        if TEST_NFS_STANDIN and host_run("true") is not None:
            # What the host mounted is the stand-in's export.
            marker = "marker-" + rand_uuid()
            path = TEST_NFS_STANDIN + NFS_EXPORT + "/" + marker
            open(path, "w").close()
            try:
                r = host_run("test -e '%s/%s'" % (p["mountPath"], marker),
                             check_rc=False)
                check(r.returncode == 0, "the mount %s on the host does not "
                      "show the stand-in export" % p["mountPath"])
            finally:
                os.unlink(path)
        R["ps"] = ps["uuid"]

    with t.step("add SFTP BACKUP-STORAGE1 as an API job, attach to ZONE1"):
        ip, password = need_test_host()
        j = c.job("/backup-storage/sftp", {
            "name": "BACKUP-STORAGE1", "url": "/backupStorage",
            "hostname": ip, "username": "root",
            "password": password}, timeout=120)
        expect(j, 200)
        bs = j.inv
        check(bs["name"] == "BACKUP-STORAGE1" and bs["url"]
              == "/backupStorage" and bs["hostname"] == ip,
              "backup storage inventory: %r" % j)
        check(bs["status"] == "Connected" and bs["totalCapacity"] > 0
              and 0 < bs["availableCapacity"] <= bs["totalCapacity"],
              "backup storage status/capacity: %r" % bs)
        check("password" not in bs and password not in j.raw.decode(),
              "backup storage shows the password")
        r = expect(c.post("/zones/%s/backup-storage/%s"
                          % (R["zone"], bs["uuid"])), 200)
        g = expect(c.get("/backup-storage/" + bs["uuid"]), 200)
        check(g.invs[0]["attachedZoneUuids"] == [R["zone"]],
              "attachedZoneUuids: %r" % g)
        R["bs"] = bs["uuid"]

    with t.step("add images ttylinux and VIRTUAL-ROUTER (system) as API "
                "jobs from local files (file://): downloaded onto "
                "BACKUP-STORAGE1, checked, Ready"):
        tty_file, vr_file = test_image(), vr_image()
        t.tap.diag("ttylinux from %s, VIRTUAL-ROUTER from %s"
                   % (tty_file.url, vr_file.url))
        t0 = time.monotonic()
        j = c.job("/images", {
            "name": "ttylinux", "format": "qcow2",
            "mediaType": "RootVolumeTemplate", "platform": "Linux",
            "url": tty_file.url, "backupStorageUuids": [R["bs"]]},
            timeout=120)
        expect(j, 200)
        tty = j.inv
        j = c.job("/images", {
            "name": "VIRTUAL-ROUTER", "format": "qcow2",
            "mediaType": "RootVolumeTemplate", "platform": "Linux",
            "url": vr_file.url, "system": True,
            "backupStorageUuids": [R["bs"]]}, timeout=120)
        expect(j, 200)
        vr = j.inv
        t.tap.diag("both images Ready in %.2f s" % (time.monotonic() - t0))
        for img, f in ((tty, tty_file), (vr, vr_file)):
            check(img["status"] == "Ready" and img["state"] == "Enabled",
                  "image %s: %r" % (img["name"], img))
            check(img["sha256Sum"] == f.sha256, "image %s: sha256 %r, the "
                  "file's is %r" % (img["name"], img["sha256Sum"], f.sha256))
            check(img["actualSize"] == f.size, "image %s: actualSize %r, "
                  "the file has %d bytes" % (img["name"], img["actualSize"],
                                             f.size))
            check([b["backupStorageUuid"] for b in img["backupStorageRefs"]]
                  == [R["bs"]], "backupStorageRefs: %r" % img)
        check(tty["system"] is False and vr["system"] is True,
              "system flags: %r / %r" % (tty["system"], vr["system"]))
        R["image"] = tty["uuid"]
        R["vr_image"] = vr["uuid"]

    with t.step("create L2 PUBLIC-MANAGEMENT-L2 (no VLAN) on the test "
                "host's spare interface and attach it to CLUSTER1 as an API "
                "job (a bridge on HOST1)"):
        pif = need_public_if()
        pub = c.create("/l2-networks/no-vlan", {
            "name": "PUBLIC-MANAGEMENT-L2", "zoneUuid": R["zone"],
            "physicalInterface": pif})
        check(pub["type"] == "L2NoVlanNetwork" and "vlan" not in pub
              and pub["physicalInterface"] == pif, "no-vlan L2: %r" % pub)
        j = c.job("/l2-networks/%s/clusters/%s" % (pub["uuid"],
                                                   R["cluster"]), {})
        expect(j, 200)
        check(j.inv["attachedClusterUuids"] == [R["cluster"]],
              "attach L2: %r" % j)
        expect(c.post("/l2-networks/%s/clusters/%s"
                      % (pub["uuid"], R["cluster"])), 409,
               mention=("PUBLIC-MANAGEMENT-L2",))
        links = host_links()
        if links is not None:
            check("br_%s" % pif in links, "no bridge br_%s on the host: %s"
                  % (pif, links))
        R["l2_pub"] = pub["uuid"]

    with t.step("create PRIVATE-L2 as the tutorial's VLAN 100 on eth0: the "
                "attach job fails on this kernel (no 802.1q) saying so and "
                "leaves no attachment"):
        vlan = c.create("/l2-networks/vlan", {
            "name": "PRIVATE-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0", "vlan": 100})
        check(vlan["type"] == "L2VlanNetwork" and vlan["vlan"] == 100,
              "vlan L2: %r" % vlan)
        j = c.job("/l2-networks/%s/clusters/%s" % (vlan["uuid"],
                                                   R["cluster"]), {})
        expect(j, 501, mention=("802.1q",))
        check(j.error.get("problem") == "not-supported", "%r" % j)
        g = expect(c.get("/l2-networks/" + vlan["uuid"]), 200).invs[0]
        check(g["attachedClusterUuids"] == [],
              "the failed attach left an attachment: %r" % g)
        check(not db_query(srv.db, "SELECT * FROM l2ClusterRef WHERE "
                           "l2NetworkUuid = ?", (vlan["uuid"],)),
              "l2ClusterRef row left")
        links = host_links()
        if links is not None:
            check("eth0.100" not in links and "br_eth0_100" not in links,
                  "a VLAN link or bridge was left on the host: %s" % links)
        # Out of the way: PRIVATE-L2 is the VXLAN network below.
        expect(c.delete("/l2-networks/" + vlan["uuid"]), 200)

    with t.step("create PRIVATE-L2 as VXLAN VNI 100 on eth0 (VXLAN stands "
                "in for the tutorial's VLAN 100 here) and attach it to "
                "CLUSTER1 as an API job (a bridge on HOST1)"):
        priv = c.create("/l2-networks/vxlan", {
            "name": "PRIVATE-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0", "vni": 100})
        check(priv["type"] == "VxlanNetwork" and priv["vni"] == 100
              and "vlan" not in priv, "vxlan L2: %r" % priv)
        j = c.job("/l2-networks/%s/clusters/%s" % (priv["uuid"],
                                                   R["cluster"]), {})
        expect(j, 200)
        check(j.inv["attachedClusterUuids"] == [R["cluster"]],
              "attach L2: %r" % j)
        links = host_links()
        if links is not None:
            check("br_vx_100" in links, "no bridge br_vx_100 on the host: "
                  "%s" % links)
        R["l2_priv"] = priv["uuid"]

    with t.step("create system L3 PUBLIC-MANAGEMENT-L3 with PUBLIC-IP-RANGE "
                "198.51.100.230-240"):
        l3 = c.create("/l3-networks", {
            "name": "PUBLIC-MANAGEMENT-L3", "l2NetworkUuid": R["l2_pub"],
            "system": True})
        check(l3["system"] is True and l3["zoneUuid"] == R["zone"],
              "public L3: %r" % l3)
        r = expect(c.post("/l3-networks/%s/ip-ranges" % l3["uuid"], {
            "name": "PUBLIC-IP-RANGE", "startIp": "198.51.100.230",
            "endIp": "198.51.100.240", "netmask": "255.255.255.0",
            "gateway": "198.51.100.1"}), 200)
        rg = r.inv
        check((rg["startIp"], rg["endIp"], rg["netmask"], rg["gateway"],
               rg["networkCidr"]) == ("198.51.100.230", "198.51.100.240",
                                      "255.255.255.0", "198.51.100.1",
                                      "198.51.100.0/24"),
              "ip range: %r" % rg)
        R["l3_pub"] = l3["uuid"]

    with t.step("create PRIVATE-L3: dnsDomain, CIDR range, DNS, services "
                "of the VirtualRouter provider"):
        l3 = c.create("/l3-networks", {
            "name": "PRIVATE-L3", "l2NetworkUuid": R["l2_priv"],
            "dnsDomain": "tutorials.zstack.org"})
        check(l3["system"] is False
              and l3["dnsDomain"] == "tutorials.zstack.org",
              "private L3: %r" % l3)
        R["l3_priv"] = l3["uuid"]
        r = expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % l3["uuid"],
                          {"name": "PRIVATE-IP-RANGE",
                           "networkCidr": "10.0.0.0/24"}), 200)
        check(r.inv["networkCidr"] == "10.0.0.0/24"
              and r.inv["gateway"] == "10.0.0.1"
              and not ip_in(r.inv["gateway"], r.inv["startIp"],
                            r.inv["endIp"])
              and ip_in(r.inv["startIp"], "10.0.0.1", "10.0.0.254")
              and ip_in(r.inv["endIp"], "10.0.0.1", "10.0.0.254"),
              "CIDR range: %r" % r.inv)
        expect(c.post("/l3-networks/%s/dns" % l3["uuid"],
                      {"dns": "198.51.100.53"}), 200)
        provs = expect(c.get("/network-services/providers"), 200).invs
        vrp = [p for p in provs if p["type"] == "VirtualRouter"]
        check(len(vrp) == 1, "VirtualRouter provider: %r" % provs)
        wanted = ["DHCP", "DNS", "SNAT", "PortForwarding"]
        check(set(wanted) <= set(vrp[0]["networkServiceTypes"]),
              "provider services: %r" % vrp[0])
        r = expect(c.post("/l3-networks/%s/network-services" % l3["uuid"],
                          {"networkServices": {vrp[0]["uuid"]: wanted}}),
                   200)
        g = expect(c.get("/l3-networks/" + l3["uuid"]), 200).invs[0]
        check(g["dns"] == ["198.51.100.53"], "dns: %r" % g["dns"])
        got = sorted(s["networkServiceType"] for s in g["networkServices"]
                     if s["networkServiceProviderUuid"] == vrp[0]["uuid"])
        check(got == sorted(wanted), "network services: %r"
              % g["networkServices"])
        S["provider"] = vrp[0]["uuid"]

    with t.step("create instance offering 512M-512HZ"):
        io = c.create("/instance-offerings", {
            "name": "512M-512HZ", "cpuNum": 1, "cpuSpeed": 512,
            "memorySize": 536870912})
        check((io["cpuNum"], io["cpuSpeed"], io["memorySize"], io["type"])
              == (1, 512, 536870912, "UserVm"), "offering: %r" % io)
        R["offering"] = io["uuid"]

    with t.step("create default VR-OFFERING on PUBLIC-MANAGEMENT-L3"):
        vro = c.create("/instance-offerings/virtual-routers", {
            "name": "VR-OFFERING", "cpuNum": 1, "cpuSpeed": 512,
            "memorySize": 536870912, "imageUuid": R["vr_image"],
            "managementNetworkUuid": R["l3_pub"],
            "publicNetworkUuid": R["l3_pub"], "zoneUuid": R["zone"],
            "isDefault": True})
        check(vro["isDefault"] is True and vro["type"] == "VirtualRouter"
              and vro["imageUuid"] == R["vr_image"]
              and vro["managementNetworkUuid"] == R["l3_pub"]
              and vro["publicNetworkUuid"] == R["l3_pub"],
              "VR offering: %r" % vro)
        R["vro"] = vro["uuid"]

    vm_params = {"instanceOfferingUuid": R["offering"],
                 "imageUuid": R["image"], "l3NetworkUuids": [R["l3_priv"]]}

    with t.step("InstantStart on an L3 whose L2 is attached to no cluster "
                "is refused with 409 saying why, and creates nothing"):
        l2x = c.create("/l2-networks/vxlan", {
            "name": "UNATTACHED-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0", "vni": 101})
        l3x = c.create("/l3-networks", {"name": "UNATTACHED-L3",
                                        "l2NetworkUuid": l2x["uuid"]})
        expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % l3x["uuid"],
                      {"name": "UNATTACHED-RANGE",
                       "networkCidr": "10.9.0.0/24"}), 200)
        before = db_dump(srv.db)
        r = c.post("/vm-instances", dict(vm_params, name="VM-NOWHERE",
                                         l3NetworkUuids=[l3x["uuid"]]))
        expect(r, 409, mention=("no host can run the VM",
                                "L2 network"))
        d = dump_diff(before, db_dump(srv.db))
        check(not d, "the refused create changed the database:\n" + d)
        check(c.find("/vm-instances", "VM-NOWHERE") is None,
              "VM-NOWHERE exists")
        doms = host_domains()
        check(not doms, "domains on the host: %r" % doms)
        expect(c.delete("/l3-networks/" + l3x["uuid"]), 200)
        expect(c.delete("/l2-networks/" + l2x["uuid"]), 200)

    with t.step("create VM1 and VM2 with the default strategy "
                "(InstantStart) on PRIVATE-L3: API jobs, Running on HOST1"):
        for name, hn in (("VM1", "vm1"), ("VM2", "vm2")):
            t0 = time.monotonic()
            j = c.job("/vm-instances", dict(vm_params, name=name,
                                            hostname=hn), timeout=180)
            expect(j, 200)
            vm = j.inv
            t.tap.diag("%s Running in %.2f s" % (name,
                                                 time.monotonic() - t0))
            nics = vm["vmNics"]
            check(vm["state"] == "Running" and vm["hostUuid"] == R["host"]
                  and vm["clusterUuid"] == R["cluster"]
                  and vm["primaryStorageUuid"] == R["ps"]
                  and vm["hostname"] == hn and len(nics) == 1
                  and nics[0]["l3NetworkUuid"] == R["l3_priv"]
                  and ip_in(nics[0]["ip"], "10.0.0.2", "10.0.0.254")
                  and nics[0]["gateway"] == "10.0.0.1"
                  and nics[0]["netmask"] == "255.255.255.0",
                  "VM inventory: %r" % vm)
            g = expect(c.get("/vm-instances/" + vm["uuid"]), 200).invs[0]
            check(g["state"] == "Running", "GET %s: %r" % (name, g))
            running = host_domains("running")
            check(running is None or vm["uuid"] in running,
                  "no running domain %s on the host: %r" % (vm["uuid"],
                                                           running))
            R[name] = vm["uuid"]
            R[name + "_nic"] = nics[0]["uuid"]
            R[name + "_ip"] = nics[0]["ip"]
        check(R["VM1_ip"] != R["VM2_ip"], "VM1 and VM2 got the same IP")
        on_host = check_host_capacity(c, R["host"])
        check({R["VM1"], R["VM2"]} <= {v["uuid"] for v in on_host},
              "VM1 and VM2 not among the VMs of HOST1: %r" % on_host)
        r = c.post("/vm-instances", dict(vm_params, name="VM-DUP",
                                         hostname="vm1"))
        expect(r, 409, field="hostname")
        check(c.find("/vm-instances", "VM-DUP") is None, "VM-DUP exists")

    with t.step("the first VM on PRIVATE-L3 made its virtual router from "
                "VR-OFFERING: Running on HOST1, its agent Connected, the "
                "gateway 10.0.0.1 and a public address"):
        vrs = expect(c.get("/vm-instances/appliances/virtual-routers"),
                     200).invs
        check(len(vrs) == 1, "virtual routers: %r" % vrs)
        vr = vrs[0]
        check(vr["type"] == "ApplianceVm" and vr["state"] == "Running"
              and vr["hostUuid"] == R["host"]
              and vr["applianceL3NetworkUuid"] == R["l3_priv"]
              and vr["vrStatus"] == "Connected"
              and vr["instanceOfferingUuid"] == R["vro"]
              and vr["imageUuid"] == R["vr_image"], "router: %r" % vr)
        nics = {n["l3NetworkUuid"]: n for n in vr["vmNics"]}
        check(set(nics) == {R["l3_pub"], R["l3_priv"]}
              and nics[R["l3_priv"]]["ip"] == "10.0.0.1"
              and ip_in(nics[R["l3_pub"]]["ip"], "198.51.100.230",
                        "198.51.100.240"), "router NICs: %r" % vr["vmNics"])
        running = host_domains("running")
        check(running is None or vr["uuid"] in running,
              "no running domain for the router: %r" % running)
        R["vr"] = vr["uuid"]
        R["vr_pub_ip"] = nics[R["l3_pub"]]["ip"]

    with t.step("create VIP on PUBLIC-MANAGEMENT-L3"):
        vip = c.create("/vips", {"name": "VIP1", "l3NetworkUuid":
                                 R["l3_pub"]})
        check(ip_in(vip["ip"], "198.51.100.230", "198.51.100.240")
              and vip["ip"] != R["vr_pub_ip"]
              and vip["l3NetworkUuid"] == R["l3_pub"]
              and vip["gateway"] == "198.51.100.1", "VIP: %r" % vip)
        R["vip"], R["vip_ip"] = vip["uuid"], vip["ip"]

    def rule(name, start, end=None, pstart=None, pend=None, proto="TCP",
             nic=None, vip=None, status=200, **err):
        p = {"name": name, "vipUuid": vip or R["vip"],
             "vipPortStart": start, "protocolType": proto}
        for k, v in (("vipPortEnd", end), ("privatePortStart", pstart),
                     ("privatePortEnd", pend), ("vmNicUuid", nic)):
            if v is not None:
                p[k] = v
        r = expect(c.post("/port-forwarding", p), status, **err)
        return r.inv

    with t.step("PORT-FORWARDING1 TCP 22->22 on VM1's NIC"):
        pf = rule("PORT-FORWARDING1", 22, 22, 22, 22, nic=R["VM1_nic"])
        check(pf["vipIp"] == R["vip_ip"] and pf["guestIp"] == R["VM1_ip"]
              and pf["vmNicUuid"] == R["VM1_nic"] and pf["state"]
              == "Enabled" and (pf["vipPortStart"], pf["vipPortEnd"],
                                pf["privatePortStart"],
                                pf["privatePortEnd"]) == (22, 22, 22, 22),
              "rule: %r" % pf)
        v = expect(c.get("/vips/" + R["vip"]), 200).invs[0]
        check(v["useFor"] == "PortForwarding", "VIP useFor: %r" % v)
        R["pf1"] = pf["uuid"]

    with t.step("detach PORT-FORWARDING1, attach it to VM2 (guestIp "
                "follows)"):
        r = expect(c.delete("/port-forwarding/%s/vm-instances/nics"
                            % R["pf1"]), 200)
        check(r.inv["vmNicUuid"] is None and r.inv["guestIp"] is None,
              "detached rule: %r" % r)
        r = expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                          % (R["pf1"], R["VM2_nic"])), 200)
        check(r.inv["vmNicUuid"] == R["VM2_nic"]
              and r.inv["guestIp"] == R["VM2_ip"], "rebound rule: %r" % r)

    with t.step("PORT-FORWARDING2 TCP 2222->22 on VM1 on the same VIP "
                "(VM1 has no rule on another VIP)"):
        pf2 = rule("PORT-FORWARDING2", 2222, 2222, 22, 22, nic=R["VM1_nic"])
        check(pf2["guestIp"] == R["VM1_ip"] and pf2["privatePortStart"]
              == 22 and pf2["vipPortStart"] == 2222, "rule 2: %r" % pf2)
        R["pf2"] = pf2["uuid"]

    with t.step("all rules of one VM use one VIP: a rule on a second VIP "
                "for VM1 or VM2 is refused"):
        vip2 = c.create("/vips", {"name": "VIP2", "l3NetworkUuid":
                                  R["l3_pub"]})
        check(vip2["ip"] != R["vip_ip"], "VIP2 got VIP1's IP")
        R["vip2"] = vip2["uuid"]
        rule("PF-OTHER-VIP", 80, nic=R["VM1_nic"], vip=vip2["uuid"],
             status=409, field="vmNicUuid", mention=("PORT-FORWARDING2",))
        loose = rule("PF-OTHER-VIP", 80, vip=vip2["uuid"])
        R["pf_vip2"] = loose["uuid"]
        expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                      % (loose["uuid"], R["VM2_nic"])), 409,
               mention=("PORT-FORWARDING1",))
        cand = expect(c.get("/port-forwarding/%s/vm-instances/"
                            "candidate-nics" % loose["uuid"]), 200).invs
        got = {n["uuid"] for n in cand}
        check(R["VM1_nic"] not in got and R["VM2_nic"] not in got,
              "candidates of a VIP2 rule include NICs of VMs bound to "
              "VIP1: %r" % cand)

    with t.step("UDP 22 beside TCP 22 on one VIP is allowed"):
        udp = rule("PF-UDP-22", 22, proto="UDP")
        check(udp["protocolType"] == "UDP" and udp["vmNicUuid"] is None,
              "UDP rule: %r" % udp)
        R["pf_udp"] = udp["uuid"]

    with t.step("overlapping TCP 20-30 is refused with 409 naming the "
                "rule"):
        rule("PF-OVERLAP", 20, 30, proto="TCP", status=409,
             mention=("PORT-FORWARDING1",))
        rule("PF-OVERLAP", 2200, 2300, proto="TCP", status=409,
             mention=("PORT-FORWARDING2",))

    with t.step("overlap on one VIP: every way two port ranges can meet "
                "is refused naming the rule met; ranges that only touch, "
                "and the other protocol, are not"):
        vip = c.create("/vips", {"name": "VIP-OVERLAP",
                                 "l3NetworkUuid": R["l3_pub"]})["uuid"]
        rule("OV-A", 100, 110, vip=vip)
        rule("OV-B", 200, 200, vip=vip)
        for start, end, met in ((105, 105, "OV-A"), (90, 100, "OV-A"),
                                (110, 150, "OV-A"), (95, 115, "OV-A"),
                                (150, 250, "OV-B"), (200, 200, "OV-B"),
                                (1, 65535, "OV-")):
            rule("OV-X", start, end, vip=vip, status=409, mention=(met,))
        for start, end in ((99, 99), (111, 199), (201, 300)):
            rule("OV-%d" % start, start, end, vip=vip)
        rule("OV-Y", 150, 150, vip=vip, status=409, mention=("OV-111",))
        rule("OV-UDP", 1, 65535, proto="UDP", vip=vip)
        expect(c.delete("/vips/" + vip), 200)
        left = [r for r in expect(c.get("/port-forwarding"), 200).invs
                if r["vipUuid"] == vip]
        check(not left, "rules left after their VIP's delete: %r" % left)

    with t.step("disable/enable a rule; attach refused while Disabled"):
        path = "/port-forwarding/" + R["pf_udp"]
        r = expect(c.action(path, "changePortForwardingRuleState",
                            {"stateEvent": "disable"}), 200)
        check(r.inv["state"] == "Disabled", "state: %r" % r)
        expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                      % (R["pf_udp"], R["VM1_nic"])), 409,
               mention=("Disabled",))
        r = expect(c.get(path), 200)
        check(r.invs[0]["vmNicUuid"] is None, "attached while disabled")
        r = expect(c.action(path, "changePortForwardingRuleState",
                            {"stateEvent": "enable"}), 200)
        check(r.inv["state"] == "Enabled", "state: %r" % r)
        expect(c.action(path, "changePortForwardingRuleState",
                        {"stateEvent": "bogus"}), 400, field="stateEvent")
        r = expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                          % (R["pf_udp"], R["VM1_nic"])), 200)
        check(r.inv["guestIp"] == R["VM1_ip"], "UDP rule: %r" % r)
        expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                      % (R["pf_udp"], R["VM1_nic"])), 409)

    with t.step("detach refused when the rule is detached"):
        expect(c.delete("/port-forwarding/%s/vm-instances/nics"
                        % R["pf_udp"]), 200)
        expect(c.delete("/port-forwarding/%s/vm-instances/nics"
                        % R["pf_udp"]), 409)

    with t.step("candidate-nics lists the VM NICs"):
        cand = expect(c.get("/port-forwarding/%s/vm-instances/"
                            "candidate-nics" % R["pf1"]), 200).invs
        got = {n["uuid"]: n for n in cand}
        check(R["VM1_nic"] in got and R["VM2_nic"] in got,
              "candidates: %r" % cand)
        check(got[R["VM1_nic"]]["ip"] == R["VM1_ip"], "candidate NIC: %r"
              % got[R["VM1_nic"]])

    with t.step("check-port-availability answers true and false"):
        base = "/vips/%s/check-port-availability?" % R["vip"]
        for qs, avail in (("protocolType=TCP&start=22", False),
                          ("protocolType=TCP&start=20&end=30", False),
                          ("protocolType=TCP&start=2222", False),
                          ("protocolType=TCP&start=23&end=2221", True),
                          ("protocolType=UDP&start=22", False),
                          ("protocolType=UDP&start=23", True),
                          ("protocolType=TCP&start=8000", True)):
            r = expect(c.get(base + qs), 200)
            check(r.body.get("available") is avail,
                  "%s: expected available=%s: %r" % (qs, avail, r))
        expect(c.get(base + "protocolType=TCP&start=0"), 400, field="start")
        expect(c.get(base + "protocolType=ICMP&start=1"), 400,
               field="protocolType")

    with t.step("destroying VM2 is an API job: its domain is gone, its "
                "rule detached (it survives), its IP and host capacity "
                "released"):
        j = c.delete_job("/vm-instances/" + R["VM2"])
        expect(j, 200)
        vm = expect(c.get("/vm-instances/" + R["VM2"]), 200).invs[0]
        check(vm["state"] == "Destroyed" and vm["hostUuid"] is None,
              "VM2: %r" % vm)
        doms = host_domains()
        check(doms is None or R["VM2"] not in doms,
              "VM2's domain is still on the host: %r" % doms)
        on_host = check_host_capacity(c, R["host"])
        check(R["VM2"] not in {v["uuid"] for v in on_host}, "VM2 still "
              "counted on HOST1")
        check(vm["vmNics"][0]["ip"] is None, "VM2's NIC keeps its IP: %r"
              % vm["vmNics"])
        pf = expect(c.get("/port-forwarding/" + R["pf1"]), 200).invs[0]
        check(pf["vmNicUuid"] is None and pf["guestIp"] is None,
              "PORT-FORWARDING1 after destroy: %r" % pf)
        used = db_query(srv.db, "SELECT uuid FROM usedIp WHERE "
                        "l3NetworkUuid = ? AND ip = ?",
                        (R["l3_priv"], R["VM2_ip"]))
        check(not used, "VM2's IP %s is still allocated: %r"
              % (R["VM2_ip"], used))
        expect(c.post("/port-forwarding/%s/vm-instances/nics/%s"
                      % (R["pf1"], R["VM2_nic"])), 409)
        expect(c.delete("/vm-instances/" + R["VM2"]), 200)

    with t.step("recover VM2 (it gets an IP again), then expunge it"):
        r = expect(c.action("/vm-instances/" + R["VM2"],
                            "recoverVmInstance"), 200)
        check(r.inv["state"] == "Stopped" and r.inv["vmNics"][0]["ip"]
              and ip_in(r.inv["vmNics"][0]["ip"], "10.0.0.2", "10.0.0.254"),
              "recovered VM2: %r" % r)
        expect(c.action("/vm-instances/" + R["VM2"], "expungeVmInstance"),
               409)
        expect(c.delete("/vm-instances/" + R["VM2"]), 200)
        expect(c.action("/vm-instances/" + R["VM2"], "expungeVmInstance"),
               200)
        expect(c.get("/vm-instances/" + R["VM2"]), 404)
        expect(c.get("/vm-instances/nics/" + R["VM2_nic"]), 404)
        check(not db_query(srv.db, "SELECT uuid FROM usedIp WHERE "
                           "ownerUuid = ?", (R["VM2"],)),
              "expunged VM2 still owns addresses")

    with t.step("deleting a VIP deletes its rules and frees its IP"):
        v3 = c.create("/vips", {"name": "VIP3", "l3NetworkUuid":
                                R["l3_pub"]})
        r3 = rule("PF-ON-VIP3", 443, vip=v3["uuid"])
        expect(c.delete("/vips/" + v3["uuid"]), 200)
        expect(c.get("/vips/" + v3["uuid"]), 404)
        expect(c.get("/port-forwarding/" + r3["uuid"]), 404)
        check(not db_query(srv.db, "SELECT uuid FROM usedIp WHERE ip = ? "
                           "AND l3NetworkUuid = ?", (v3["ip"], R["l3_pub"])),
              "VIP3's address is still allocated")
        expect(c.delete("/port-forwarding/" + R["pf_vip2"]), 200)
        expect(c.get("/port-forwarding/" + R["pf_vip2"]), 404)

    with t.step("deleting a missing rule succeeds (200)"):
        expect(c.delete("/port-forwarding/" + rand_uuid()), 200)

    with t.step("queries: q=, limit/start, count=true, sort"):
        r = expect(c.get("/port-forwarding?" + q("name=PORT-FORWARDING1")),
                   200)
        check([x["uuid"] for x in r.invs] == [R["pf1"]], "q=name: %r" % r)
        r = expect(c.get("/port-forwarding?" + q("vipUuid=" + R["vip"])),
                   200)
        names = sorted(x["name"] for x in r.invs)
        check(names == ["PF-UDP-22", "PORT-FORWARDING1",
                        "PORT-FORWARDING2"], "rules of VIP1: %r" % names)
        everything = expect(c.get("/port-forwarding?sort=name"), 200).invs
        n = len(everything)
        check(n >= 3 and [x["name"] for x in everything]
              == sorted(x["name"] for x in everything),
              "sort=name: %r" % [x["name"] for x in everything])
        r = expect(c.get("/port-forwarding?count=true"), 200)
        check(r.body == {"total": n}, "count=true: %r (expected %d)"
              % (r, n))
        r = expect(c.get("/port-forwarding?count=true&" + q(
            "protocolType=UDP")), 200)
        check(r.body["total"] == 1, "count of UDP rules: %r" % r)
        pages = []
        for start in range(n):
            r = expect(c.get("/port-forwarding?sort=name&limit=1&start=%d"
                             % start), 200)
            check(len(r.invs) == 1, "limit=1: %r" % r)
            pages.append(r.invs[0]["uuid"])
        check(pages == [x["uuid"] for x in everything],
              "paging with limit/start differs from the full list")
        r = expect(c.get("/port-forwarding?limit=2&start=%d" % (n - 1)), 200)
        check(len(r.invs) == 1, "last page: %r" % r)
        r = expect(c.get("/port-forwarding?replyWithCount=true&limit=1"),
                   200)
        check(r.body.get("total") == n and len(r.invs) == 1,
              "replyWithCount: %r" % r)
        r = expect(c.get("/vm-instances?" + q("name?=VM1,VM2")), 200)
        check({x["name"] for x in r.invs} == {"VM1"}, "q=name?=: %r" % r)
        r = expect(c.get("/l3-networks?" + q("system=true") + "&"
                         + q("zoneUuid=" + R["zone"])), 200)
        check([x["name"] for x in r.invs] == ["PUBLIC-MANAGEMENT-L3"],
              "q=system=true: %r" % [x["name"] for x in r.invs])
        expect(c.get("/zones?" + q("nosuchfield=1")), 400, field="q")
        expect(c.get("/zones?limit=-1"), 400, field="limit")

    with t.step("GET by uuid, 404 on unknown uuids"):
        for path, key in (("/zones/", "zone"), ("/clusters/", "cluster"),
                          ("/hosts/", "host"), ("/primary-storage/", "ps"),
                          ("/backup-storage/", "bs"), ("/images/", "image"),
                          ("/l2-networks/", "l2_priv"),
                          ("/l3-networks/", "l3_priv"),
                          ("/instance-offerings/", "offering"),
                          ("/instance-offerings/virtual-routers/", "vro"),
                          ("/vm-instances/", "VM1"),
                          ("/vm-instances/appliances/virtual-routers/",
                           "vr"), ("/vips/", "vip"),
                          ("/port-forwarding/", "pf1"),
                          ("/vm-instances/nics/", "VM1_nic")):
            if key not in R:
                continue
            r = expect(c.get(path + R[key]), 200)
            check(len(r.invs) == 1 and r.invs[0]["uuid"] == R[key],
                  "GET %s: %r" % (path, r))
            expect(c.get(path + rand_uuid()), 404)

    with t.step("update name and description"):
        path = "/port-forwarding/" + R["pf1"]
        r = expect(c.action(path, "updatePortForwardingRule", {
            "name": "PF1-RENAMED", "description": "ssh to the VM"}), 200)
        check(r.inv["name"] == "PF1-RENAMED"
              and r.inv["description"] == "ssh to the VM", "update: %r" % r)
        g = expect(c.get(path), 200).invs[0]
        check(g["name"] == "PF1-RENAMED", "GET after update: %r" % g)
        expect(c.action(path, "updatePortForwardingRule",
                        {"vipPortStart": 1}), 400, field="vipPortStart")
        expect(c.action(path, "updatePortForwardingRule",
                        {"name": " lead"}), 400, field="name")
        r = expect(c.action(path, "updatePortForwardingRule",
                            {"name": "PORT-FORWARDING1"}), 200)
        check(r.inv["description"] == "ssh to the VM", "description lost")
        r = expect(c.action("/zones/" + R["zone"], "updateZone",
                            {"description": "the tutorial's zone"}), 200)
        check(r.inv["name"] == "ZONE1"
              and r.inv["description"] == "the tutorial's zone",
              "zone update: %r" % r)
        expect(c.action("/zones/" + rand_uuid(), "updateZone",
                        {"name": "X"}), 404)

    S["tutorial"] = R
