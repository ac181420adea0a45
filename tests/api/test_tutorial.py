"""The elastic port-forwarding tutorial (tests/../shared/seed/elastic-port-
forwarding-tutorial.md) through the REST API, in its order and with its
names, then the rules of port-forwarding rules, VM lifecycle and the
generic query/get/update/delete behaviour on what it built.

Every step is one TAP line; a failed step stops the case (later steps need
its result)."""

import ipaddress
import urllib.parse

from harness import (TEST_HOST_IP, TEST_HOST_PASSWORD, case, check, db_dump,
                     db_query, dump_diff, expect, rand_uuid)

HOST_IP = TEST_HOST_IP or "192.168.0.212"
HOST_PASSWORD = TEST_HOST_PASSWORD or "tutorial-root-password"


def ip_in(ip, first, last):
    a = ipaddress.IPv4Address(ip)
    return ipaddress.IPv4Address(first) <= a <= ipaddress.IPv4Address(last)


def q(expr):
    return "q=" + urllib.parse.quote(expr)


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

    # Nothing later needs HOST1: a skip here (no SSH server for a version
    # that bootstraps hosts) does not stop the tutorial.
    with t.step("add host HOST1 as an API job; it ends Disconnected (or "
                "Connected to a real test host)", go_on=True):
        j = c.ssh_job("/hosts/kvm", {"name": "HOST1",
                                     "clusterUuid": R["cluster"],
                                     "managementIp": HOST_IP,
                                     "username": "root",
                                     "password": HOST_PASSWORD})
        expect(j, 200)
        h = j.inv
        check(h and h["name"] == "HOST1" and h["managementIp"] == HOST_IP
              and h["clusterUuid"] == R["cluster"]
              and h["zoneUuid"] == R["zone"],
              "host inventory: %r" % j)
        check(h["status"] == "Disconnected" or (TEST_HOST_IP and h["status"]
                                                == "Connected"),
              "host status %r, expected Disconnected (this version has no "
              "SSH bootstrap) or Connected (to a test host)" % h["status"])
        check("password" not in h, "host inventory shows the password")
        g = expect(c.get("/hosts/" + h["uuid"]), 200)
        check(g.invs[0]["status"] == h["status"], "GET host: %r" % g)
        R["host"], R["host_ip"] = h["uuid"], h["managementIp"]

    with t.step("add NFS PRIMARY-STORAGE1 and attach it to CLUSTER1"):
        ps = c.create("/primary-storage/nfs", {
            "name": "PRIMARY-STORAGE1", "zoneUuid": R["zone"],
            "url": "192.168.0.212:/usr/local/zstack/nfs_root"})
        check(ps["type"] == "NFS" and ps["url"]
              == "192.168.0.212:/usr/local/zstack/nfs_root",
              "primary storage inventory: %r" % ps)
        r = expect(c.post("/clusters/%s/primary-storage/%s"
                          % (R["cluster"], ps["uuid"])), 200)
        check(R["cluster"] in r.inv["attachedClusterUuids"],
              "attach reply: %r" % r)
        expect(c.post("/clusters/%s/primary-storage/%s"
                      % (R["cluster"], ps["uuid"])), 409)
        R["ps"] = ps["uuid"]

    with t.step("add SFTP BACKUP-STORAGE1 as an API job, attach to ZONE1"):
        j = c.ssh_job("/backup-storage/sftp", {
            "name": "BACKUP-STORAGE1", "url": "/backupStorage",
            "hostname": HOST_IP, "username": "root",
            "password": HOST_PASSWORD})
        expect(j, 200)
        bs = j.inv
        check(bs["name"] == "BACKUP-STORAGE1" and bs["url"]
              == "/backupStorage" and bs["hostname"] == HOST_IP,
              "backup storage inventory: %r" % j)
        check("password" not in bs, "backup storage shows the password")
        r = expect(c.post("/zones/%s/backup-storage/%s"
                          % (R["zone"], bs["uuid"])), 200)
        g = expect(c.get("/backup-storage/" + bs["uuid"]), 200)
        check(g.invs[0]["attachedZoneUuids"] == [R["zone"]],
              "attachedZoneUuids: %r" % g)
        R["bs"] = bs["uuid"]

    with t.step("add images ttylinux and VIRTUAL-ROUTER (system)"):
        tty = c.create("/images", {
            "name": "ttylinux", "format": "qcow2",
            "mediaType": "RootVolumeTemplate", "platform": "Linux",
            "url": "http://download.zstack.org/templates/ttylinux.qcow2",
            "backupStorageUuids": [R["bs"]]})
        vr = c.create("/images", {
            "name": "VIRTUAL-ROUTER", "format": "qcow2",
            "mediaType": "RootVolumeTemplate", "platform": "Linux",
            "url": "http://download.zstack.org/templates/"
                   "zstack-virtualrouter.qcow2",
            "system": True, "backupStorageUuids": [R["bs"]]})
        check(tty["system"] is False and vr["system"] is True,
              "system flags: %r / %r" % (tty["system"], vr["system"]))
        check([b["backupStorageUuid"] for b in tty["backupStorageRefs"]]
              == [R["bs"]], "backupStorageRefs: %r" % tty)
        R["image"] = tty["uuid"]
        R["vr_image"] = vr["uuid"]

    with t.step("create L2 PUBLIC-MANAGEMENT-L2 (no VLAN) and PRIVATE-L2 "
                "(VLAN 100), attach both to CLUSTER1"):
        pub = c.create("/l2-networks/no-vlan", {
            "name": "PUBLIC-MANAGEMENT-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0"})
        priv = c.create("/l2-networks/vlan", {
            "name": "PRIVATE-L2", "zoneUuid": R["zone"],
            "physicalInterface": "eth0", "vlan": 100})
        check(pub["type"] == "L2NoVlanNetwork" and "vlan" not in pub,
              "no-vlan L2: %r" % pub)
        check(priv["type"] == "L2VlanNetwork" and priv["vlan"] == 100,
              "vlan L2: %r" % priv)
        for l2 in (pub, priv):
            r = expect(c.post("/l2-networks/%s/clusters/%s"
                              % (l2["uuid"], R["cluster"])), 200)
            check(r.inv["attachedClusterUuids"] == [R["cluster"]],
                  "attach L2: %r" % r)
        R["l2_pub"], R["l2_priv"] = pub["uuid"], priv["uuid"]

    with t.step("create system L3 PUBLIC-MANAGEMENT-L3 with PUBLIC-IP-RANGE "
                "192.168.0.230-240"):
        l3 = c.create("/l3-networks", {
            "name": "PUBLIC-MANAGEMENT-L3", "l2NetworkUuid": R["l2_pub"],
            "system": True})
        check(l3["system"] is True and l3["zoneUuid"] == R["zone"],
              "public L3: %r" % l3)
        r = expect(c.post("/l3-networks/%s/ip-ranges" % l3["uuid"], {
            "name": "PUBLIC-IP-RANGE", "startIp": "192.168.0.230",
            "endIp": "192.168.0.240", "netmask": "255.255.255.0",
            "gateway": "192.168.0.1"}), 200)
        rg = r.inv
        check((rg["startIp"], rg["endIp"], rg["netmask"], rg["gateway"],
               rg["networkCidr"]) == ("192.168.0.230", "192.168.0.240",
                                      "255.255.255.0", "192.168.0.1",
                                      "192.168.0.0/24"),
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
                      {"dns": "8.8.8.8"}), 200)
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
        check(g["dns"] == ["8.8.8.8"], "dns: %r" % g["dns"])
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

    with t.step("VM create with the default strategy (InstantStart) is "
                "refused as not supported and creates nothing"):
        before = db_dump(srv.db)
        r = c.post("/vm-instances", dict(vm_params, name="VM1",
                                         hostname="vm1"))
        expect(r, 501, field="strategy")
        check(r.error.get("problem") == "not-supported",
              "problem %r" % r.error)
        check("JustCreate" in r.error["details"],
              "the error should tell to use JustCreate: %r" % r)
        d = dump_diff(before, db_dump(srv.db))
        check(not d, "the refused create changed the database:\n" + d)
        check(c.find("/vm-instances", "VM1") is None, "VM1 exists")

    with t.step("create VM1 and VM2 (JustCreate) on PRIVATE-L3"):
        for name, hn in (("VM1", "vm1"), ("VM2", "vm2")):
            vm = c.create("/vm-instances", dict(vm_params, name=name,
                                                hostname=hn,
                                                strategy="JustCreate"))
            nics = vm["vmNics"]
            check(vm["state"] == "Stopped" and vm["hostname"] == hn
                  and len(nics) == 1
                  and nics[0]["l3NetworkUuid"] == R["l3_priv"]
                  and ip_in(nics[0]["ip"], "10.0.0.2", "10.0.0.254")
                  and nics[0]["gateway"] == "10.0.0.1"
                  and nics[0]["netmask"] == "255.255.255.0",
                  "VM inventory: %r" % vm)
            R[name] = vm["uuid"]
            R[name + "_nic"] = nics[0]["uuid"]
            R[name + "_ip"] = nics[0]["ip"]
        check(R["VM1_ip"] != R["VM2_ip"], "VM1 and VM2 got the same IP")
        r = c.post("/vm-instances", dict(vm_params, name="VM-DUP",
                                         hostname="vm1",
                                         strategy="JustCreate"))
        expect(r, 409, field="hostname")

    with t.step("create VIP on PUBLIC-MANAGEMENT-L3"):
        vip = c.create("/vips", {"name": "VIP1", "l3NetworkUuid":
                                 R["l3_pub"]})
        check(ip_in(vip["ip"], "192.168.0.230", "192.168.0.240")
              and vip["l3NetworkUuid"] == R["l3_pub"]
              and vip["gateway"] == "192.168.0.1", "VIP: %r" % vip)
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

    with t.step("destroying VM2 detaches its rule (which survives) and "
                "releases its IP"):
        expect(c.delete("/vm-instances/" + R["VM2"]), 200)
        vm = expect(c.get("/vm-instances/" + R["VM2"]), 200).invs[0]
        check(vm["state"] == "Destroyed", "VM2: %r" % vm)
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
                          ("/vm-instances/", "VM1"), ("/vips/", "vip"),
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
