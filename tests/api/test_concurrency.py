"""Concurrency: 50 clients at once against one server.
- 50 creates of the same VIP port: exactly one wins, 49 get 409;
- 50 VM creates on PRIVATE-L3: 50 distinct addresses, no 5xx (JustCreate:
  recorded Stopped VMs; 50 running TCG guests would not fit this machine);
- 50 VIP creates on one L3: 50 distinct addresses."""

import collections
import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor

from harness import (TEST_HOST_IP, TEST_HOST_PASSWORD, EnvSkip, case,
                     check, db_query, expect, test_image)

N = 50


def parallel(n, fn):
    """Runs fn(i) for i in 0..n-1 on n threads released together."""
    gate = threading.Barrier(n)

    def run(i):
        gate.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def private_env(c, shared):
    """PRIVATE-L3 of the tutorial (or an equivalent one made here when the
    tutorial case did not complete), an image and an offering for VMs."""
    tut = shared.get("tutorial")
    if tut:
        return tut["l3_priv"], tut["image"], tut["offering"]
    if "cc_private" not in shared:
        try:
            shared["cc_private"] = make_private_env(c, shared)
        except EnvSkip as e:
            shared["cc_private"] = e
    if isinstance(shared["cc_private"], EnvSkip):
        raise shared["cc_private"]
    return shared["cc_private"]


def make_private_env(c, shared):
    zone = shared.get("cc_zone") or c.create("/zones", {"name": "CC-ZONE"})[
        "uuid"]
    shared["cc_zone"] = zone
    bs = {"name": "CC-BS", "url": "/backupStorage/cc",
          "hostname": "127.0.0.31",
          "sshPort": 1, "password": "cc-password"}
    if TEST_HOST_IP:
        bs.update(hostname=TEST_HOST_IP, password=TEST_HOST_PASSWORD)
        del bs["sshPort"]
    j = c.ssh_job("/backup-storage/sftp", bs)
    expect(j, 200)
    j = c.job("/images", {"name": "CC-IMAGE", "format": "qcow2",
                          "url": test_image().url,
                          "backupStorageUuids": [j.inv["uuid"]]},
              timeout=120)
    expect(j, 200)
    image = j.inv
    offering = c.create("/instance-offerings", {
        "name": "CC-OFFERING", "cpuNum": 1, "memorySize": 536870912})
    l2 = c.create("/l2-networks/vlan", {"name": "CC-L2", "zoneUuid": zone,
                                        "physicalInterface": "eth0",
                                        "vlan": 100})
    l3 = c.create("/l3-networks", {"name": "PRIVATE-L3",
                                   "l2NetworkUuid": l2["uuid"]})
    expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % l3["uuid"], {
        "name": "CC-RANGE", "networkCidr": "10.0.0.0/24"}), 200)
    prov = expect(c.get("/network-services/providers?q=type=VirtualRouter"),
                  200).invs[0]["uuid"]
    expect(c.post("/l3-networks/%s/network-services" % l3["uuid"], {
        "networkServices": {prov: ["DHCP", "PortForwarding"]}}), 200)
    return l3["uuid"], image["uuid"], offering["uuid"]


@case("concurrency", order=40)
def concurrency(t):
    srv = t.env.main()
    c = srv.login()
    F = {}

    with t.step("set up: a public L3 with a /24 range and a VIP"):
        zone = (t.env.shared.get("tutorial") or {}).get("zone") or c.create(
            "/zones", {"name": "CC-ZONE"})["uuid"]
        t.env.shared.setdefault("cc_zone", zone)
        l2 = c.create("/l2-networks/no-vlan", {
            "name": "CC-PUB-L2", "zoneUuid": zone,
            "physicalInterface": "eth7"})
        l3 = c.create("/l3-networks", {"name": "CC-PUB-L3",
                                       "l2NetworkUuid": l2["uuid"],
                                       "category": "Public"})
        expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % l3["uuid"], {
            "name": "CC-PUB-RANGE", "networkCidr": "172.20.0.0/24"}), 200)
        F["l3_pub"] = l3["uuid"]
        F["vip"] = c.create("/vips", {"name": "CC-VIP",
                                      "l3NetworkUuid": l3["uuid"]})["uuid"]

    with t.step("50 parallel creates of TCP 8080 on one VIP: one 200, "
                "49 409"):
        def create_rule(i):
            return c.post("/port-forwarding", {
                "name": "CC-PF-%02d" % i, "vipUuid": F["vip"],
                "vipPortStart": 8080, "protocolType": "TCP"})
        res = parallel(N, create_rule)
        counts = collections.Counter(r.status for r in res)
        check(counts == {200: 1, 409: N - 1},
              "statuses %r; first odd one: %r" % (
                  dict(counts), next((r for r in res
                                      if r.status not in (200, 409)),
                                     None)))
        winner = next(r for r in res if r.status == 200).inv
        for r in res:
            if r.status == 409:
                expect(r, 409, mention=(winner["name"],))
        rules = expect(c.get("/port-forwarding?q=vipUuid=" + F["vip"]),
                       200).invs
        check([x["uuid"] for x in rules] == [winner["uuid"]],
              "rules on the VIP: %r" % rules)

    # VMs need an image, which needs a backup storage: a version that
    # bootstraps those over SSH needs a test host for these two steps.
    with t.step("50 parallel VM creates on PRIVATE-L3 get 50 distinct IPs",
                go_on=True):
        l3_priv, image, offering = private_env(c, t.env.shared)
        F.update(l3_priv=l3_priv, image=image, offering=offering)

        def create_vm(i):
            return c.post("/vm-instances", {
                "name": "CC-VM-%02d" % i, "strategy": "JustCreate",
                "instanceOfferingUuid": F["offering"], "imageUuid":
                F["image"], "l3NetworkUuids": [F["l3_priv"]]})
        res = parallel(N, create_vm)
        bad = [r for r in res if r.status != 200]
        check(not bad, "%d of %d creates failed, e.g. %r" % (
            len(bad), N, bad[:2]))
        ips = [r.inv["vmNics"][0]["ip"] for r in res]
        check(len(set(ips)) == N, "duplicate IPs: %r" % sorted(
            ip for ip, k in collections.Counter(ips).items() if k > 1))
        net = ipaddress.ip_network("10.0.0.0/24")
        check(all(ipaddress.ip_address(ip) in net for ip in ips),
              "IPs outside 10.0.0.0/24: %r" % ips)
        dup = db_query(srv.db, "SELECT ip, count(*) FROM vmNic WHERE "
                       "l3NetworkUuid = ? AND ip IS NOT NULL GROUP BY ip "
                       "HAVING count(*) > 1", (F["l3_priv"],))
        check(not dup, "NICs sharing an address in the database: %r" % dup)
        used = db_query(srv.db, "SELECT count(*) FROM usedIp WHERE "
                        "l3NetworkUuid = ? AND ownerUuid IN (%s)"
                        % ",".join("?" * N), (F["l3_priv"],)
                        + tuple(r.inv["uuid"] for r in res))
        check(used[0][0] == N, "usedIp rows of the new VMs: %r" % used)

    with t.step("50 parallel VIP creates get 50 distinct IPs"):
        def create_vip(i):
            return c.post("/vips", {"name": "CC-VIP-%02d" % i,
                                    "l3NetworkUuid": F["l3_pub"]})
        res = parallel(N, create_vip)
        bad = [r for r in res if r.status != 200]
        check(not bad, "%d of %d creates failed, e.g. %r" % (
            len(bad), N, bad[:2]))
        ips = [r.inv["ip"] for r in res]
        check(len(set(ips)) == N, "duplicate VIP addresses: %r" % sorted(
            ip for ip, k in collections.Counter(ips).items() if k > 1))
        all_vips = expect(c.get("/vips?q=l3NetworkUuid=" + F["l3_pub"]),
                          200).invs
        check(len({v["ip"] for v in all_vips}) == len(all_vips) == N + 1,
              "VIPs of the L3: %d, distinct addresses: %d" % (
                  len(all_vips), len({v["ip"] for v in all_vips})))
        F["vips"] = [r.inv["uuid"] for r in res]

    with t.step("50 parallel attaches of rules on 50 VIPs to one VM: one "
                "wins (all rules of a VM use one VIP)", go_on=True):
        l3_priv, image, offering = private_env(c, t.env.shared)
        F.update(l3_priv=l3_priv, image=image, offering=offering)
        vm = c.create("/vm-instances", {
            "name": "CC-TARGET", "strategy": "JustCreate",
            "instanceOfferingUuid": F["offering"], "imageUuid": F["image"],
            "l3NetworkUuids": [F["l3_priv"]]})
        nic = vm["vmNics"][0]["uuid"]
        rules = [c.create("/port-forwarding", {
            "name": "CC-RULE-%02d" % i, "vipUuid": vip, "vipPortStart": 22,
            "protocolType": "TCP"})["uuid"]
            for i, vip in enumerate(F["vips"])]

        def attach(i):
            return c.post("/port-forwarding/%s/vm-instances/nics/%s"
                          % (rules[i], nic))
        res = parallel(N, attach)
        counts = collections.Counter(r.status for r in res)
        check(counts == {200: 1, 409: N - 1}, "statuses %r" % dict(counts))
        attached = expect(c.get("/port-forwarding?q=vmNicUuid=" + nic),
                          200).invs
        check(len(attached) == 1, "rules attached to the NIC: %r"
              % [(r["name"], r["vipIp"]) for r in attached])
