"""Bad input: each row is one request that must be refused with its 4xx
status, naming the offending field in error.field or error.details (or the
blocking resource for 409s on delete), and must leave the database exactly
as it was (full dump of every table but session and apiJob, before and
after)."""

from harness import (TEST_HOST_IP, TEST_HOST_PASSWORD, EnvSkip, case,
                     check, db_dump, dump_diff, expect, rand_uuid,
                     test_image, vr_image)

BIG = 1024 * 1024


def setup(c, shared):
    """The resources the table refers to; own names, own zone.  The host
    and the backup storage (and so the images and VMs) are optional: a
    version that bootstraps them over SSH cannot add them without a test
    host; F["missing"] then says why, and the rows that need them skip.
    The images are real downloads of the local test images (file://) onto
    a folder of the test host's private /backupStorage; the VMs are
    JustCreate records (Stopped: no guest runs for this case)."""
    F = {"missing": {}}
    F["zone"] = c.create("/zones", {"name": "BI-ZONE"})["uuid"]
    F["cluster"] = c.create("/clusters", {
        "name": "BI-CLUSTER", "zoneUuid": F["zone"],
        "hypervisorType": "KVM"})["uuid"]
    # Nothing listens on port 1 (a version with SSH bootstrap fails it).
    try:
        j = c.ssh_job("/hosts/kvm", {
            "name": "BI-HOST", "clusterUuid": F["cluster"],
            "managementIp": "127.0.0.21", "sshPort": 1,
            "password": "bi-host-password"})
        expect(j, 200)
        F["host"] = j.inv["uuid"]
        F["host_ip"], F["host_name"] = "127.0.0.21", "BI-HOST"
        F["host_cluster"] = F["cluster"]
    except EnvSkip as e:
        # The tutorial's HOST1 (on a test host) serves as well.
        tut = shared.get("tutorial") or {}
        if tut.get("host"):
            F["host"], F["host_ip"] = tut["host"], tut["host_ip"]
            F["host_name"], F["host_cluster"] = "HOST1", tut["cluster"]
        else:
            F["host"], F["missing"]["host"] = None, str(e)
            F["host_ip"], F["host_name"] = "127.0.0.21", "BI-HOST"
            F["host_cluster"] = F["cluster"]
    bs = {"name": "BI-BS", "url": "/backupStorage/bi-bs",
          "hostname": "127.0.0.22",
          "sshPort": 1, "password": "bi-bs-password"}
    if TEST_HOST_IP:
        bs.update(hostname=TEST_HOST_IP, password=TEST_HOST_PASSWORD)
        del bs["sshPort"]
    try:
        j = c.ssh_job("/backup-storage/sftp", bs)
        expect(j, 200)
        F["bs"] = j.inv["uuid"]
    except EnvSkip as e:
        F["bs"] = None
        for k in ("bs", "image", "vm"):
            F["missing"][k] = "needs a backup storage: %s" % e
    if F["bs"]:
        for key, name, f, system in (("image", "BI-IMAGE", test_image(),
                                      False),
                                     ("sys_image", "BI-SYS-IMAGE",
                                      vr_image(), True)):
            j = c.job("/images", {"name": name, "format": "qcow2",
                                  "url": f.url, "system": system,
                                  "backupStorageUuids": [F["bs"]]},
                      timeout=120)
            expect(j, 200)
            check(j.inv["status"] == "Ready", "image %s: %r" % (name, j))
            F[key] = j.inv["uuid"]
    else:
        F["image"] = F["sys_image"] = rand_uuid()
    F["offering"] = c.create("/instance-offerings", {
        "name": "BI-OFFERING", "cpuNum": 1,
        "memorySize": 256 * 1024 * 1024})["uuid"]
    F["l2_pub"] = c.create("/l2-networks/no-vlan", {
        "name": "BI-L2-PUB", "zoneUuid": F["zone"],
        "physicalInterface": "eth1"})["uuid"]
    F["l2_priv"] = c.create("/l2-networks/vlan", {
        "name": "BI-L2-PRIV", "zoneUuid": F["zone"],
        "physicalInterface": "eth1", "vlan": 300})["uuid"]
    provider = c.get("/network-services/providers?q=type=VirtualRouter")
    expect(provider, 200)
    prov = provider.invs[0]["uuid"]
    # A public L3 that is not a system network, so that a VM can have a
    # NIC on it (the VIP's own L3 case).
    F["l3_pub"] = c.create("/l3-networks", {
        "name": "BI-PUB", "l2NetworkUuid": F["l2_pub"],
        "category": "Public"})["uuid"]
    r = expect(c.post("/l3-networks/%s/ip-ranges" % F["l3_pub"], {
        "name": "BI-PUB-RANGE", "startIp": "172.30.0.10",
        "endIp": "172.30.0.100", "netmask": "255.255.255.0",
        "gateway": "172.30.0.1"}), 200)
    F["range_pub"] = r.inv["uuid"]
    F["l3_priv"] = c.create("/l3-networks", {
        "name": "BI-PRIV", "l2NetworkUuid": F["l2_priv"]})["uuid"]
    expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % F["l3_priv"], {
        "name": "BI-PRIV-RANGE", "networkCidr": "10.30.0.0/24"}), 200)
    for l3 in (F["l3_pub"], F["l3_priv"]):
        expect(c.post("/l3-networks/%s/network-services" % l3, {
            "networkServices": {prov: ["DHCP", "DNS", "SNAT",
                                       "PortForwarding"]}}), 200)
    F["l3_sys"] = c.create("/l3-networks", {
        "name": "BI-SYS", "l2NetworkUuid": F["l2_pub"],
        "system": True})["uuid"]
    # An L3 without the PortForwarding service (with a VM on it, below).
    F["l3_nopf"] = c.create("/l3-networks", {
        "name": "BI-NOPF", "l2NetworkUuid": F["l2_priv"]})["uuid"]
    expect(c.post("/l3-networks/%s/ip-ranges/by-cidr" % F["l3_nopf"], {
        "name": "BI-NOPF-RANGE", "networkCidr": "10.31.0.0/24"}), 200)
    F["vm"] = F["vm_nic"] = F["vm_pub_nic"] = F["vm_nopf_nic"] = None
    if F["bs"]:
        vm = {"instanceOfferingUuid": F["offering"],
              "imageUuid": F["image"], "strategy": "JustCreate"}
        v = c.create("/vm-instances", dict(vm, name="BI-VM",
                                           l3NetworkUuids=[F["l3_priv"]]))
        F["vm"], F["vm_nic"] = v["uuid"], v["vmNics"][0]["uuid"]
        v = c.create("/vm-instances", dict(vm, name="BI-VM-PUB",
                                           l3NetworkUuids=[F["l3_pub"]]))
        F["vm_pub_nic"] = v["vmNics"][0]["uuid"]
        v = c.create("/vm-instances", dict(vm, name="BI-VM-NOPF",
                                           l3NetworkUuids=[F["l3_nopf"]]))
        F["vm_nopf_nic"] = v["vmNics"][0]["uuid"]
    vip = c.create("/vips", {"name": "BI-VIP", "l3NetworkUuid": F["l3_pub"]})
    F["vip"], F["vip_ip"] = vip["uuid"], vip["ip"]
    F["range_priv"] = c.get("/l3-networks/" + F["l3_priv"]).invs[0][
        "ipRanges"][0]["uuid"]
    # A second zone, for attachments across zones.
    F["zone2"] = c.create("/zones", {"name": "BI-ZONE2"})["uuid"]
    F["cluster2"] = c.create("/clusters", {
        "name": "BI-CLUSTER2", "zoneUuid": F["zone2"],
        "hypervisorType": "KVM"})["uuid"]
    # A job (bridges on the cluster's Connected hosts: it has none).
    expect(c.job("/l2-networks/%s/clusters/%s" % (F["l2_pub"],
                                                  F["cluster"]), {}), 200)
    pf = {"name": "BI-PF", "vipUuid": F["vip"], "vipPortStart": 80,
          "protocolType": "TCP"}
    if F["vm_nic"]:
        pf["vmNicUuid"] = F["vm_nic"]
    F["pf"] = c.create("/port-forwarding", pf)["uuid"]
    F["pf_loose"] = c.create("/port-forwarding", {
        "name": "BI-PF-LOOSE", "vipUuid": F["vip"], "vipPortStart": 81,
        "protocolType": "TCP"})["uuid"]
    # Stand-ins for what could not be made (their rows are skipped).
    for k in ("host", "bs", "vm", "vm_nic", "vm_pub_nic", "vm_nopf_nic"):
        F[k] = F[k] or rand_uuid()
    return F


# Rows that need records a version with SSH bootstrap cannot make without
# a test host: the fixture each needs.
NEEDS = {
    "wrong JSON type (string for list)": "image",
    "bad uuid in a list": "image",
    "NIC on the VIP's own L3 network": "vm",
    "delete of an L3 network with NICs": "vm",
    "delete of an image in use": "vm",
    "delete of a cluster with a host": "host",
    "delete of a backup storage with an image": "image",
    "delete of an offering in use": "vm",
    "duplicate managementIp": "host",
    "VM on a system L3": "image",
    "VM with a bad hostname": "image",
    "VM naming one L3 twice": "image",
    "VM default L3 not among its L3s": "image",
    "VM with a system image": "image",
    "VM strategy not offered": "image",
    "rule on a NIC whose L3 lacks PortForwarding": "vm",
    "attach of a rule to a NIC on the VIP's own L3": "vm",
    "ISO media type with qcow2 format": "bs",
    "image url with a bad scheme": "bs",
    "image on no backup storage": "bs",
}


def table(F):
    """(name, method, path, body-or-raw, status, field, mentions)."""
    zone, l3p, l3v = F["zone"], F["l3_pub"], F["l3_priv"]
    pf = {"name": "BI-PF-X", "vipUuid": F["vip"], "protocolType": "TCP",
          "vipPortStart": 1000}
    io = {"name": "BI-IO-X", "cpuNum": 1, "memorySize": 256 * 1024 * 1024}
    cl = {"name": "BI-CL-X", "zoneUuid": zone, "hypervisorType": "KVM"}
    rng = {"name": "BI-R-X", "netmask": "255.255.255.0",
           "gateway": "172.30.0.1"}
    host = {"name": "BI-HOST-X", "clusterUuid": F["cluster"],
            "password": "secret-x"}
    ps = {"name": "BI-PS-X", "zoneUuid": zone}
    l2v = {"name": "BI-L2-X", "zoneUuid": zone, "physicalInterface": "eth9"}
    vm = {"name": "BI-VM-X", "instanceOfferingUuid": F["offering"],
          "imageUuid": F["image"], "strategy": "JustCreate"}

    def d(base, **kw):
        out = dict(base)
        out.update(kw)
        return out

    P = lambda p: {"params": p}  # noqa: E731
    rows = [
        ("name empty", "POST", "/zones", P({"name": ""}), 400, "name"),
        ("name with a leading space", "POST", "/zones",
         P({"name": " ZONE"}), 400, "name"),
        ("name with a trailing space", "POST", "/zones",
         P({"name": "ZONE "}), 400, "name"),
        ("name of 256 characters", "POST", "/zones",
         P({"name": "z" * 256}), 400, "name"),
        ("name with a control character", "POST", "/zones",
         P({"name": "a\nb"}), 400, "name"),
        ("description of 2049 characters", "POST", "/zones",
         P({"name": "BI-Z", "description": "d" * 2049}), 400,
         "description"),
        ("update to an empty name", "PUT", "/zones/%s/actions" % zone,
         {"updateZone": {"name": ""}}, 400, "name"),
        ("update with description of 2049 characters", "PUT",
         "/port-forwarding/%s/actions" % F["pf"],
         {"updatePortForwardingRule": {"description": "d" * 2049}}, 400,
         "description"),
        ("unknown field", "POST", "/zones",
         P({"name": "BI-Z", "colour": "red"}), 400, "colour"),
        ("unknown field on update", "PUT", "/zones/%s/actions" % zone,
         {"updateZone": {"colour": "red"}}, 400, "colour"),
        ("wrong JSON type (string for integer)", "POST",
         "/instance-offerings", P(d(io, cpuNum="1")), 400, "cpuNum"),
        ("wrong JSON type (number for string)", "POST", "/zones",
         P({"name": 5}), 400, "name"),
        ("wrong JSON type (string for boolean)", "POST", "/l3-networks",
         P({"name": "BI-L3-X", "l2NetworkUuid": F["l2_pub"],
            "system": "yes"}), 400, "system"),
        ("wrong JSON type (params not an object)", "POST", "/zones",
         {"params": ["ZONE"]}, 400, "params"),
        ("wrong JSON type (string for list)", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=l3v)), 400, "l3NetworkUuids"),
        ("bad uuid", "POST", "/clusters", P(d(cl, zoneUuid="not-a-uuid")),
         400, "zoneUuid"),
        ("uuid of nothing", "POST", "/clusters", P(d(cl,
                                                     zoneUuid=rand_uuid())),
         400, "zoneUuid"),
        ("bad uuid in a list", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v, "xyz"])), 400, "l3NetworkUuids"),
        ("missing required field", "POST", "/clusters",
         P({"name": "BI-CL-X", "zoneUuid": zone}), 400, "hypervisorType"),
        ("missing required name", "POST", "/zones", P({}), 400, "name"),
        ("null for a required field", "POST", "/zones", P({"name": None}),
         400, "name"),
        ("missing params", "POST", "/zones", {"name": "BI-Z"}, 400,
         "params"),
        ("resourceUuid that is not a uuid", "POST", "/zones",
         P({"name": "BI-Z", "resourceUuid": "zone-1"}), 400,
         "resourceUuid"),
        ("resourceUuid of an existing zone", "POST", "/zones",
         P({"name": "BI-Z", "resourceUuid": zone.upper()}), 409,
         "resourceUuid"),
        ("choice not offered (hypervisor)", "POST", "/clusters",
         P(d(cl, hypervisorType="XEN")), 400, "hypervisorType"),
        ("vipPortStart 0", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=0)), 400, "vipPortStart"),
        ("vipPortStart 65536", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=65536)), 400, "vipPortStart"),
        ("vipPortEnd 65536", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=65530, vipPortEnd=65536)), 400,
         "vipPortEnd"),
        ("privatePortStart 0", "POST", "/port-forwarding",
         P(d(pf, privatePortStart=0)), 400, "privatePortStart"),
        ("privatePortEnd 65536", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=1000, vipPortEnd=1001,
             privatePortStart=65535, privatePortEnd=65536)), 400,
         "privatePortEnd"),
        ("vipPortEnd below vipPortStart", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=1000, vipPortEnd=999)), 400, "vipPortEnd"),
        ("VIP and private ranges of unequal length", "POST",
         "/port-forwarding",
         P(d(pf, vipPortStart=1000, vipPortEnd=1010, privatePortStart=2000,
             privatePortEnd=2005)), 400, "privatePortEnd"),
        ("protocolType ICMP", "POST", "/port-forwarding",
         P(d(pf, protocolType="ICMP")), 400, "protocolType"),
        ("allowedCidr not a CIDR", "POST", "/port-forwarding",
         P(d(pf, allowedCidr="10.0.0.0/33")), 400, "allowedCidr"),
        ("allowedCidr garbage", "POST", "/port-forwarding",
         P(d(pf, allowedCidr="ten.0.0.0/8")), 400, "allowedCidr"),
        ("allowedCidr with host bits", "POST", "/port-forwarding",
         P(d(pf, allowedCidr="10.0.0.1/24")), 400, "allowedCidr"),
        ("NIC on the VIP's own L3 network", "POST", "/port-forwarding",
         P(d(pf, vmNicUuid=F["vm_pub_nic"])), 400, "vmNicUuid"),
        ("NIC that does not exist", "POST", "/port-forwarding",
         P(d(pf, vmNicUuid=rand_uuid())), 400, "vmNicUuid"),
        ("VIP port overlapping another rule", "POST", "/port-forwarding",
         P(d(pf, vipPortStart=70, vipPortEnd=90)), 409, "vipPortStart",
         ("BI-PF",)),
        ("IP range start after end", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.150", endIp="172.30.0.120")), 400,
         "startIp"),
        ("IP range with the gateway inside", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.110", endIp="172.30.0.120",
             gateway="172.30.0.115")), 400, "gateway"),
        ("IP range starting at the network address", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.0", endIp="172.30.0.5",
             gateway="172.30.0.254")), 400, "startIp"),
        ("IP range ending at the broadcast address", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.200", endIp="172.30.0.255")), 400,
         "endIp"),
        ("IP range not an address", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.300", endIp="172.30.0.310")), 400,
         "startIp"),
        ("IP range overlapping a range of the L3", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.50", endIp="172.30.0.150")), 409,
         "startIp", ("BI-PUB-RANGE",)),
        ("second CIDR on the same L3 (by CIDR)", "POST",
         "/l3-networks/%s/ip-ranges/by-cidr" % l3p,
         P({"name": "BI-R-X", "networkCidr": "172.31.0.0/24"}), 409,
         "networkCidr", ("172.30.0.0/24",)),
        ("second CIDR on the same L3 (by range)", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.31.0.10", endIp="172.31.0.20",
             gateway="172.31.0.1")), 409, "startIp", ("172.30.0.0/24",)),
        ("same subnet with another gateway", "POST",
         "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.150", endIp="172.30.0.160",
             gateway="172.30.0.254")), 409, "startIp", ("172.30.0.1",)),
        ("invalid netmask", "POST", "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.150", endIp="172.30.0.160",
             netmask="255.0.255.0")), 400, "netmask"),
        ("netmask /32", "POST", "/l3-networks/%s/ip-ranges" % l3p,
         P(d(rng, startIp="172.30.0.150", endIp="172.30.0.160",
             netmask="255.255.255.255")), 400, "netmask"),
        ("CIDR with host bits", "POST",
         "/l3-networks/%s/ip-ranges/by-cidr" % l3v,
         P({"name": "BI-R-X", "networkCidr": "10.30.0.1/24"}), 400,
         "networkCidr"),
        ("CIDR /33", "POST", "/l3-networks/%s/ip-ranges/by-cidr" % l3v,
         P({"name": "BI-R-X", "networkCidr": "10.30.0.0/33"}), 400,
         "networkCidr"),
        ("VLAN 0", "POST", "/l2-networks/vlan", P(d(l2v, vlan=0)), 400,
         "vlan"),
        ("VLAN 4095", "POST", "/l2-networks/vlan", P(d(l2v, vlan=4095)),
         400, "vlan"),
        ("VNI 0", "POST", "/l2-networks/vxlan", P(d(l2v, vni=0)), 400,
         "vni"),
        ("VNI 16777216", "POST", "/l2-networks/vxlan",
         P(d(l2v, vni=16777216)), 400, "vni"),
        ("physical interface with a slash", "POST", "/l2-networks/no-vlan",
         P(d(l2v, physicalInterface="eth0/1")), 400, "physicalInterface"),
        ("duplicate managementIp", "POST", "/hosts/kvm",
         P(d(host, managementIp=F["host_ip"])), 409, "managementIp",
         (F["host_name"],)),
        ("managementIp not an address", "POST", "/hosts/kvm",
         P(d(host, managementIp="127.0.0.300")), 400, "managementIp"),
        ("host without password", "POST", "/hosts/kvm",
         P({"name": "BI-HOST-X", "clusterUuid": F["cluster"],
            "managementIp": "127.0.0.29"}), 400, "password"),
        ("NFS url without ':/'", "POST", "/primary-storage/nfs",
         P(d(ps, url="192.168.0.212/nfs_root")), 400, "url"),
        ("NFS url pointing into /proc", "POST", "/primary-storage/nfs",
         P(d(ps, url="192.168.0.212:/proc/self")), 400, "url"),
        ("NFS url with '..'", "POST", "/primary-storage/nfs",
         P(d(ps, url="192.168.0.212:/srv/../etc")), 400, "url"),
        ("SFTP url pointing into /sys", "POST", "/backup-storage/sftp",
         P({"name": "BI-BS-X", "url": "/sys/kernel", "hostname": "127.0.0.9",
            "password": "x"}), 400, "url"),
        ("VM on a system L3", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[F["l3_sys"]])), 400, "l3NetworkUuids"),
        ("VM with a bad hostname", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v], hostname="bad_host")), 400,
         "hostname"),
        ("VIP requiredIp outside the ranges", "POST", "/vips",
         P({"name": "BI-VIP-X", "l3NetworkUuid": l3p,
            "requiredIp": "172.30.0.200"}), 400, "requiredIp"),
        ("check-port-availability with port 0", "GET",
         "/vips/%s/check-port-availability?protocolType=TCP&start=0"
         % F["vip"], None, 400, "start"),
        ("delete of a zone with a cluster", "DELETE", "/zones/" + zone,
         None, 409, None, ("BI-CLUSTER",)),
        ("delete of an L3 network with NICs", "DELETE",
         "/l3-networks/" + l3v, None, 409, None, ("BI-VM",)),
        ("delete of an image in use", "DELETE", "/images/" + F["image"],
         None, 409, None, ("BI-VM",)),
        ("delete of a cluster with a host", "DELETE",
         "/clusters/" + F["host_cluster"], None, 409, None,
         (F["host_name"],)),
        ("delete of an IP range with addresses in use", "DELETE",
         "/l3-networks/ip-ranges/" + F["range_pub"], None, 409, None,
         ("address user",)),
        ("delete of an L2 network with an L3", "DELETE",
         "/l2-networks/" + F["l2_pub"], None, 409, None, ("BI-PUB",)),
        ("delete of a backup storage with an image", "DELETE",
         "/backup-storage/" + F["bs"], None, 409, None, ("image 'BI-",)),
        ("delete of an offering in use", "DELETE",
         "/instance-offerings/" + F["offering"], None, 409, None,
         ("BI-VM",)),
        ("delete with a malformed uuid", "DELETE", "/zones/xyz", None, 400,
         None),
        ("VM naming one L3 twice", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v, l3v])), 400, "l3NetworkUuids"),
        ("VM default L3 not among its L3s", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v], defaultL3NetworkUuid=l3p)), 400,
         "defaultL3NetworkUuid"),
        ("VM with a system image", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v], imageUuid=F["sys_image"])), 400,
         "imageUuid"),
        ("VM strategy not offered", "POST", "/vm-instances",
         P(d(vm, l3NetworkUuids=[l3v], strategy="Later")), 400,
         "strategy"),
        ("VIP requiredIp already in use", "POST", "/vips",
         P({"name": "BI-VIP-X", "l3NetworkUuid": l3p,
            "requiredIp": F["vip_ip"]}), 409, "requiredIp"),
        ("VIP requiredIp not an address", "POST", "/vips",
         P({"name": "BI-VIP-X", "l3NetworkUuid": l3p,
            "requiredIp": "172.30.0"}), 400, "requiredIp"),
        ("VIP on an L3 without IP range", "POST", "/vips",
         P({"name": "BI-VIP-X", "l3NetworkUuid": F["l3_sys"]}), 409, None,
         ("no IP range",)),
        ("rule on a NIC whose L3 lacks PortForwarding", "POST",
         "/port-forwarding", P(d(pf, vmNicUuid=F["vm_nopf_nic"])), 400,
         "vmNicUuid", ("PortForwarding",)),
        ("attach of a rule to a NIC on the VIP's own L3", "POST",
         "/port-forwarding/%s/vm-instances/nics/%s" % (F["pf_loose"],
                                                       F["vm_pub_nic"]),
         None, 400, "vmNicUuid"),
        ("L2 on an interface the zone already uses untagged", "POST",
         "/l2-networks/no-vlan", P(d(l2v, physicalInterface="eth1")), 409,
         None, ("BI-L2-PUB",)),
        ("L2 attached to a cluster twice", "POST",
         "/l2-networks/%s/clusters/%s" % (F["l2_pub"], F["cluster"]), None,
         409, None, ("BI-L2-PUB",)),
        ("L2 attached to a cluster of another zone", "POST",
         "/l2-networks/%s/clusters/%s" % (F["l2_pub"], F["cluster2"]), None,
         400, None, ("zone",)),
        ("ISO media type with qcow2 format", "POST", "/images",
         P({"name": "BI-IMG-X", "format": "qcow2", "mediaType": "ISO",
            "url": "http://127.0.0.1:9/x.iso",
            "backupStorageUuids": [F["bs"]]}), 400, "format"),
        ("image url with a bad scheme", "POST", "/images",
         P({"name": "BI-IMG-X", "format": "qcow2",
            "url": "ftp://127.0.0.1:9/x.qcow2",
            "backupStorageUuids": [F["bs"]]}), 400, "url"),
        ("image on no backup storage", "POST", "/images",
         P({"name": "BI-IMG-X", "format": "qcow2",
            "url": "http://127.0.0.1:9/x.qcow2",
            "backupStorageUuids": []}), 400, "backupStorageUuids"),
        ("memorySize below 16 MiB", "POST", "/instance-offerings",
         P(d(io, memorySize=1024)), 400, "memorySize"),
        ("host sshPort 0", "POST", "/hosts/kvm",
         P(d(host, managementIp="127.0.0.29", sshPort=0)), 400,
         "sshPort"),
        ("action that is not an object", "PUT", "/zones/%s/actions" % zone,
         {"updateZone": "BI"}, 400, "updateZone"),
        ("unknown action", "PUT", "/zones/%s/actions" % zone,
         {"rebootZone": {}}, 400, "rebootZone"),
        ("two actions in one body", "PUT", "/zones/%s/actions" % zone,
         {"updateZone": {"name": "A"}, "changeZoneState":
          {"stateEvent": "disable"}}, 400, None),
        ("state event not offered", "PUT", "/zones/%s/actions" % zone,
         {"changeZoneState": {"stateEvent": "pause"}}, 400, "stateEvent"),
        ("body over 1 MiB", "POST", "/zones",
         ("raw", b'{"params":{"name":"' + b"x" * BIG + b'"}}',
          "application/json"), 413, None),
        ("non-JSON content type", "POST", "/zones",
         ("raw", b'{"params":{"name":"BI-Z"}}', "text/plain"), 415, None),
        ("form content type", "POST", "/zones",
         ("raw", b"name=BI-Z", "application/x-www-form-urlencoded"), 415,
         None),
        ("malformed JSON", "POST", "/zones",
         ("raw", b'{"params":{"name":"BI-Z"}', "application/json"), 400,
         "params"),
        ("JSON that is not an object", "POST", "/zones",
         ("raw", b'["BI-Z"]', "application/json"), 400, "params"),
        ("duplicate JSON keys", "POST", "/zones",
         ("raw", b'{"params":{"name":"A","name":"B"}}', "application/json"),
         400, "params"),
        ("query with limit=-1", "GET", "/zones?limit=-1", None, 400,
         "limit"),
        ("query on an unknown field", "GET", "/zones?q=colour%3Dred", None,
         400, "q"),
    ]
    return rows


@case("bad-input", order=30)
def bad_input(t):
    srv = t.env.main()
    c = srv.login()
    with t.step("set up the resources the table refers to"):
        F = setup(c, t.env.shared)
        t.env.shared["bad_input"] = F
        names = {row[0] for row in table(F)}
        check(set(NEEDS) <= names and len(names) == len(table(F)),
              "table names not unique, or NEEDS names unknown rows: %r"
              % (set(NEEDS) - names))

    def run(method, path, body, status, field, mentions):
        before = db_dump(srv.db)
        if isinstance(body, tuple) and body[0] == "raw":
            r = c.request(method, path, raw=body[1], ctype=body[2])
        else:
            r = c.request(method, path, body=body)
        expect(r, status, field=field, mention=mentions)
        check(r.status < 500, "5xx: %r" % r)
        diff = dump_diff(before, db_dump(srv.db))
        check(not diff, "the refused request changed the database:\n"
              + diff)

    for row in table(F):
        name, method, path, body, status, field = row[:6]
        mentions = row[6] if len(row) > 6 else ()
        need = NEEDS.get(name)
        if need in F["missing"]:
            t.skip(name, F["missing"][need])
            continue
        t.item(name, run, method, path, body, status, field, mentions)

    def accepted(path, params, check_fn=None):
        r = c.post(path, params)
        expect(r, 200)
        if check_fn:
            check_fn(r.inv)
        return r.inv

    with t.step("boundary values are accepted (name 255, description "
                "2048, ports 1 and 65535, VLAN 1/4094, VNI 1/16777215)"):
        z = accepted("/zones", {"name": "n" * 255, "description": "d" * 2048},
                     lambda i: check(len(i["name"]) == 255
                                     and len(i["description"]) == 2048,
                                     "name/description: %r" % i))
        expect(c.delete("/zones/" + z["uuid"]), 200)
        for port in (1, 65535):
            accepted("/port-forwarding", {
                "name": "BI-PF-%d" % port, "vipUuid": F["vip"],
                "vipPortStart": port, "protocolType": "UDP"},
                lambda i, p=port: check(
                    (i["vipPortStart"], i["vipPortEnd"],
                     i["privatePortStart"], i["privatePortEnd"])
                    == (p, p, p, p), "ports: %r" % i))
        for vlan in (1, 4094):
            accepted("/l2-networks/vlan", {
                "name": "BI-VLAN-%d" % vlan, "zoneUuid": F["zone"],
                "physicalInterface": "eth1", "vlan": vlan})
        for vni in (1, 16777215):
            accepted("/l2-networks/vxlan", {
                "name": "BI-VNI-%d" % vni, "zoneUuid": F["zone"],
                "physicalInterface": "eth1", "vni": vni})

    with t.step("the fixtures are still intact"):
        for path, key in (("/zones/", "zone"), ("/l3-networks/", "l3_priv"),
                          ("/images/", "image"), ("/clusters/", "cluster"),
                          ("/port-forwarding/", "pf"), ("/hosts/", "host"),
                          ("/vm-instances/", "vm")):
            if key not in F["missing"]:
                expect(c.get(path + F[key]), 200)
