#!/usr/bin/env python3
"""tests/e2e: the tutorial end to end (issue 5), step by step with the CLI
and the tutorial's names, against a real `kvmstack serve`, a bootstrapped
KVM test host (tests/bed), the test image as `ttylinux`, the virtual
router image as VIRTUAL-ROUTER, and real SSH logins through the VIPs from
client namespaces outside.  Prints TAP.

Stand-ins, named as TESTBED.md asks:
- NFS: no NFS client in this kernel; agent.conf bind-mounts a shared
  directory in place of the export (the agent's mount path is unchanged).
- PRIVATE-L2 is VLAN 100 where the kernel has 802.1q, else VXLAN VNI 100;
  the test says which it used.
- Public addresses: TEST-NET-2 (198.51.100.0/24) in place of the tutorial's
  192.168.0.230-240; the DNS server 198.51.100.53 (inside the bed) stands
  in for 8.8.8.8: no test may use a public resolver.

Topology (all inside namespaces this test makes; nothing leaves the
machine; everything is removed at the end, pass or fail):

  client1 198.51.100.100 --+
  client2 198.51.100.101 --+-- bridge in netns "sw" -- pub0 (in host1)
                                                       br_pub0: VR public NIC
  host1: eth0 10.250.N.2 (management link), br_vx_100/br_eth0_100: VR
         private NIC (10.0.0.1) + VM1, VM2
"""

import argparse
import json
import os
import secrets
import sqlite3
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "api"))
sys.path.insert(0, str(REPO / "tests" / "bed"))

import harness  # noqa: E402
from harness import (Server, Tap, Case, StepAbort, check,  # noqa: E402
                     wait_for)
from bed import KVMSTACK_DIRS, Bed  # noqa: E402
import httpserve  # noqa: E402

SERVE_ARGS = ["--host-ping-interval", "1000", "--host-ping-max-failure", "3",
              "--vm-domain-type", "qemu", "--vm-stop-timeout", "20000"]
PUB_NET = "198.51.100"
CLIENTS = {"client1": PUB_NET + ".100", "client2": PUB_NET + ".101"}
IMAGES = harness.build_dir() / "images"


def sh(argv, check_rc=True, timeout=60, input=None):
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check_rc and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv),
                                                      r.returncode,
                                                      r.stderr.strip()))
    return r


class Net:
    """The public switch and the client namespaces."""

    def __init__(self, host):
        self.tag = "kse%d" % os.getpid()
        self.sw = self.tag + "-sw"
        self.ns = {name: "%s-%s" % (self.tag, name) for name in CLIENTS}
        self.made = []
        sh(["ip", "netns", "add", self.sw])
        self.made.append(self.sw)
        sh(["ip", "-n", self.sw, "link", "add", "sw0", "type", "bridge"])
        sh(["ip", "-n", self.sw, "link", "set", "sw0", "up"])
        # host1's public interface pub0, its peer on the switch.
        a, b = self.tag + "a", self.tag + "b"
        sh(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        sh(["ip", "link", "set", a, "netns", host.netns, "name", "pub0"])
        sh(["ip", "link", "set", b, "netns", self.sw])
        sh(["ip", "-n", self.sw, "link", "set", b, "master", "sw0", "up"])
        sh(["ip", "-n", host.netns, "link", "set", "pub0", "up"])
        for i, (name, ip) in enumerate(CLIENTS.items()):
            ns = self.ns[name]
            sh(["ip", "netns", "add", ns])
            self.made.append(ns)
            a, b = "%sc%d" % (self.tag, i), "%sp%d" % (self.tag, i)
            sh(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
            sh(["ip", "link", "set", a, "netns", ns, "name", "eth0"])
            sh(["ip", "link", "set", b, "netns", self.sw])
            sh(["ip", "-n", self.sw, "link", "set", b, "master", "sw0",
                "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            sh(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"])

    def close(self):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made = []


class Cli:
    def __init__(self, srv, session):
        self.env = dict(os.environ, KVMSTACK_URL=srv.url,
                        KVMSTACK_SESSION=session)
        self.bin = str(harness.kvmstack_bin())

    def run(self, *args, input=None, ok=True, timeout=600):
        r = subprocess.run([self.bin, "--json"] + list(args),
                           capture_output=True, text=True, env=self.env,
                           input=input, timeout=timeout)
        if ok and r.returncode != 0:
            raise AssertionError("kvmstack %s -> exit %d: %s"
                                 % (" ".join(args), r.returncode,
                                    r.stderr.strip()[-800:]))
        if not ok and r.returncode == 0:
            raise AssertionError("kvmstack %s succeeded, expected a failure"
                                 % " ".join(args))
        try:
            body = json.loads(r.stdout) if r.stdout.strip() else None
        except ValueError:
            body = None
        return body if ok else r

    def attempt(self, *args, input=None, timeout=600):
        """Runs a command that may fail; returns the CompletedProcess."""
        return subprocess.run([self.bin, "--json"] + list(args),
                              capture_output=True, text=True, env=self.env,
                              input=input, timeout=timeout)

    def inv(self, *args, **kw):
        body = self.run(*args, **kw)
        return (body or {}).get("inventory") or \
            ((body or {}).get("inventories") or [None])[0]

    def query(self, what, *conds):
        return (self.run("query-" + what, *conds) or {}).get(
            "inventories", [])



class Ssh:
    """Real SSH logins (OpenSSH with sshpass) from a client namespace to
    VIP:port, the guest's host key pinned."""

    def __init__(self, workdir):
        key = (IMAGES / "test-guest.hostkey.pub").read_text().split()[:2]
        self.key = " ".join(key)
        self.kh = Path(workdir) / "known_hosts"
        self.kh.write_text("")

    def pin(self, ip, port=22):
        name = ip if port == 22 else "[%s]:%d" % (ip, port)
        with open(self.kh, "a") as f:
            f.write("%s %s\n" % (name, self.key))

    def run(self, ns, ip, port, cmd, timeout=30):
        argv = ["ip", "netns", "exec", ns, "sshpass", "-p", "password",
                "ssh", "-p", str(port), "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=%s" % self.kh,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o",
                "ConnectTimeout=8", "-o", "PreferredAuthentications=password",
                "-o", "PubkeyAuthentication=no", "-F", "/dev/null",
                "-o", "LogLevel=ERROR", "root@" + ip, cmd]
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout)

    def hostname(self, ns, ip, port=22):
        r = self.run(ns, ip, port, "hostname")
        if r.returncode != 0:
            raise AssertionError("ssh %s:%d from %s: %s" % (
                ip, port, ns, (r.stderr or r.stdout).strip()[-300:]))
        return r.stdout.strip()


def refused(ns, ip, port, timeout=8):
    """True when a TCP connect from 'ns' to ip:port fails."""
    code = ("import socket,sys\ns=socket.socket();s.settimeout(%d)\n"
            "try:\n s.connect((%r,%d));print('open')\nexcept OSError as e:"
            "\n print('closed',e)\n" % (timeout, ip, port))
    r = sh(["ip", "netns", "exec", ns, "python3", "-c", code],
           timeout=timeout + 10)
    return r.stdout.startswith("closed")


def udp_echo(ns, ip, port, text):
    """Sends 'text' to ip:port over UDP from 'ns' and returns the answer
    of the guest's udp-echo service ("<hostname> <text>"), or ''."""
    code = ("import socket\ns=socket.socket(socket.AF_INET,"
            "socket.SOCK_DGRAM)\ns.settimeout(2)\nfor i in range(10):\n"
            " s.sendto(%r,(%r,%d))\n try:\n  print(s.recv(2000).decode());"
            "break\n except OSError: pass\n" % (text.encode(), ip, port))
    return sh(["ip", "netns", "exec", ns, "python3", "-c", code],
              timeout=40).stdout.strip()


def tutorial(t, env, work):
    image = IMAGES / "test-guest.qcow2"
    vr_image = IMAGES / "kvmstack-vr.qcow2"
    standin = Path(work) / "nfs-standin"
    (standin / "usr/local/zstack/nfs_root").mkdir(parents=True)
    with t.step("the test images exist (make images)"):
        check(image.exists() and vr_image.exists(),
              "run make images: %s, %s" % (image, vr_image))

    bed = Bed()
    bed.__enter__()
    net = None
    try:
        with t.step("test bed: host1, public switch, two clients"):
            h = bed.add_host("host1", with_libvirt=True,
                             private_dirs=KVMSTACK_DIRS)
            h.run("printf '%%s\\n' '# NFS stand-in: no NFS client here' "
                  "'nfs_mount_command = mount --bind %s{export} {path}' "
                  "> /etc/kvmstack/agent.conf" % standin)
            net = Net(h)
            srv = Server("e2e", args=SERVE_ARGS).start()
            env.active.insert(0, srv)
            c = srv.login()
            cli = Cli(srv, c.session)
            ssh = Ssh(work)
        run_tutorial(t, h, net, cli, ssh, srv)
    finally:
        if net:
            net.close()
        bed.__exit__(None, None, None)


def run_tutorial(t, h, net, cli, ssh, srv):
    c1, c2 = net.ns["client1"], net.ns["client2"]
    R = {}

    with t.step("create ZONE1 and CLUSTER1"):
        cli.run("create-zone", "--name", "ZONE1")
        cli.run("create-cluster", "--name", "CLUSTER1", "--zone-uuid",
                "ZONE1", "--hypervisor-type", "KVM")

    with t.step("add HOST1 with its root password: Connected"):
        inv = cli.inv("add-kvm-host", "--name", "HOST1", "--cluster-uuid",
                      "CLUSTER1", "--management-ip", h.ip,
                      "--password-stdin", input=h.password + "\n")
        check(inv["status"] == "Connected", "%r" % inv)

    with t.step("PRIMARY-STORAGE1 (NFS, stand-in) attached to CLUSTER1"):
        cli.run("add-nfs-primary-storage", "--name", "PRIMARY-STORAGE1",
                "--zone-uuid", "ZONE1", "--url",
                "192.168.0.212:/usr/local/zstack/nfs_root")
        inv = cli.inv("attach-primary-storage-to-cluster",
                      "--primary-storage-uuid", "PRIMARY-STORAGE1",
                      "--cluster-uuid", "CLUSTER1")
        check(inv["status"] == "Connected", "%r" % inv)

    with t.step("BACKUP-STORAGE1 (SFTP) attached to ZONE1"):
        inv = cli.inv("add-sftp-backup-storage", "--name", "BACKUP-STORAGE1",
                      "--url", "/backupStorage", "--hostname", h.ip,
                      "--password-stdin", input=h.password + "\n")
        check(inv["status"] == "Connected", "%r" % inv)
        cli.run("attach-backup-storage-to-zone", "--backup-storage-uuid",
                "BACKUP-STORAGE1", "--zone-uuid", "ZONE1")

    with t.step("images ttylinux and VIRTUAL-ROUTER (system) downloaded"):
        base = httpserve.serve(h, str(IMAGES))
        inv = cli.inv("add-image", "--name", "ttylinux", "--format", "qcow2",
                      "--media-type", "RootVolumeTemplate", "--platform",
                      "Linux", "--url", base + "/test-guest.qcow2",
                      "--backup-storage-uuids", "BACKUP-STORAGE1")
        check(inv["status"] == "Ready", "%r" % inv)
        inv = cli.inv("add-image", "--name", "VIRTUAL-ROUTER", "--format",
                      "qcow2", "--media-type", "RootVolumeTemplate",
                      "--platform", "Linux", "--system", "--url",
                      base + "/kvmstack-vr.qcow2",
                      "--backup-storage-uuids", "BACKUP-STORAGE1")
        check(inv["status"] == "Ready" and inv["system"] is True,
              "%r" % inv)

    with t.step("PUBLIC-MANAGEMENT-L2 (no VLAN, pub0) attached"):
        cli.run("create-l2-no-vlan-network", "--name",
                "PUBLIC-MANAGEMENT-L2", "--zone-uuid", "ZONE1",
                "--physical-interface", "pub0")
        cli.run("attach-l2-network-to-cluster", "--l2-network-uuid",
                "PUBLIC-MANAGEMENT-L2", "--cluster-uuid", "CLUSTER1")

    with t.step("PRIVATE-L2: VLAN 100 where the kernel has 802.1q, else "
                "VXLAN 100"):
        cli.run("create-l2-vlan-network", "--name", "PRIVATE-L2",
                "--zone-uuid", "ZONE1", "--physical-interface", "eth0",
                "--vlan", "100")
        r = cli.attempt("attach-l2-network-to-cluster", "--l2-network-uuid",
                        "PRIVATE-L2", "--cluster-uuid", "CLUSTER1")
        if r.returncode != 0:
            check("802.1q" in r.stderr, "VLAN failed otherwise: %s"
                  % r.stderr)
            t.tap.diag("PRIVATE-L2: this kernel lacks 802.1q; using a "
                       "VXLAN network (VNI 100) in its place")
            cli.run("delete-l2-network", "--uuid", "PRIVATE-L2")
            cli.run("create-l2-vxlan-network", "--name", "PRIVATE-L2",
                    "--zone-uuid", "ZONE1", "--physical-interface", "eth0",
                    "--vni", "100")
            cli.run("attach-l2-network-to-cluster", "--l2-network-uuid",
                    "PRIVATE-L2", "--cluster-uuid", "CLUSTER1")
        else:
            t.tap.diag("PRIVATE-L2: VLAN 100")

    with t.step("PUBLIC-MANAGEMENT-L3 (system) with PUBLIC-IP-RANGE"):
        cli.run("create-l3-network", "--name", "PUBLIC-MANAGEMENT-L3",
                "--l2-network-uuid", "PUBLIC-MANAGEMENT-L2", "--system")
        cli.run("add-ip-range", "--l3-network-uuid", "PUBLIC-MANAGEMENT-L3",
                "--name", "PUBLIC-IP-RANGE", "--start-ip", PUB_NET + ".230",
                "--end-ip", PUB_NET + ".240", "--netmask", "255.255.255.0",
                "--gateway", PUB_NET + ".1")

    with t.step("PRIVATE-L3 10.0.0.0/24, DNS, services DHCP DNS SNAT "
                "PortForwarding"):
        cli.run("create-l3-network", "--name", "PRIVATE-L3",
                "--l2-network-uuid", "PRIVATE-L2", "--dns-domain",
                "tutorials.zstack.org")
        cli.run("add-ip-range-by-network-cidr", "--l3-network-uuid",
                "PRIVATE-L3", "--name", "PRIVATE-IP-RANGE",
                "--network-cidr", "10.0.0.0/24")
        cli.run("add-dns-to-l3-network", "--l3-network-uuid", "PRIVATE-L3",
                "--dns", PUB_NET + ".53")
        inv = cli.inv("attach-network-service-to-l3-network",
                      "--l3-network-uuid", "PRIVATE-L3", "--provider",
                      "VirtualRouter", "--services",
                      "DHCP,DNS,SNAT,PortForwarding")
        check(len(inv["networkServices"]) == 4, "%r" % inv)

    with t.step("offerings 512M-512HZ and VR-OFFERING (default)"):
        cli.run("create-instance-offering", "--name", "512M-512HZ",
                "--cpu-num", "1", "--cpu-speed", "512", "--memory-size",
                "512M")
        cli.run("create-virtual-router-offering", "--name", "VR-OFFERING",
                "--zone-uuid", "ZONE1", "--cpu-num", "1", "--cpu-speed",
                "512", "--memory-size", "512M", "--image-uuid",
                "VIRTUAL-ROUTER", "--management-network-uuid",
                "PUBLIC-MANAGEMENT-L3", "--public-network-uuid",
                "PUBLIC-MANAGEMENT-L3", "--is-default")

    def create_vm(name, hn):
        t0 = time.monotonic()
        inv = cli.inv("create-vm-instance", "--name", name, "--hostname", hn,
                      "--instance-offering-uuid", "512M-512HZ",
                      "--image-uuid", "ttylinux", "--l3-network-uuids",
                      "PRIVATE-L3", timeout=900)
        check(inv["state"] == "Running", "%r" % inv)
        t.tap.diag("%s Running after %.1f s" % (name,
                                                time.monotonic() - t0))
        return inv

    with t.step("VM1 (hostname vm1): Running, behind a new virtual "
                "router"):
        R["vm1"] = create_vm("VM1", "vm1")
        vrs = cli.query("vm-instance", "type=ApplianceVm")
        check(len(vrs) == 1 and vrs[0]["state"] == "Running"
              and vrs[0]["vrStatus"] == "Connected", "VR: %r" % vrs)
        R["vr"] = vrs[0]

    with t.step("PORT-FORWARDING1: VIP:22 -> VM1:22; SSH prints vm1"):
        vip = cli.inv("create-vip", "--name", "VIP1", "--l3-network-uuid",
                      "PUBLIC-MANAGEMENT-L3")
        R["vip1"] = vip["ip"]
        cli.run("create-port-forwarding-rule", "--name", "PORT-FORWARDING1",
                "--vip-uuid", "VIP1", "--protocol-type", "TCP",
                "--vip-port-start", "22", "--vip-port-end", "22",
                "--private-port-start", "22", "--private-port-end", "22",
                "--vm", "VM1")
        ssh.pin(R["vip1"])
        got = wait_for("SSH to VIP1 from client1", lambda: ssh.hostname(
            c1, R["vip1"]) == "vm1" and "vm1", timeout=180, interval=2)
        check(got == "vm1", got)

    with t.step("VM2; detach PORT-FORWARDING1, attach it to VM2; SSH "
                "prints vm2"):
        R["vm2"] = create_vm("VM2", "vm2")
        cli.run("detach-port-forwarding-rule", "--uuid", "PORT-FORWARDING1")
        check(refused(c1, R["vip1"], 22), "detached rule still forwards")
        inv = cli.inv("attach-port-forwarding-rule", "--rule-uuid",
                      "PORT-FORWARDING1", "--vm", "VM2")
        check(inv["guestIp"] == R["vm2"]["vmNics"][0]["ip"], "%r" % inv)
        got = wait_for("SSH to VIP1 lands in VM2", lambda: ssh.hostname(
            c1, R["vip1"]) == "vm2" and "vm2", timeout=180, interval=2)
        check(got == "vm2", got)

    with t.step("PORT-FORWARDING2 on a second VIP: 2222 -> VM1:22; SSH "
                "prints vm1"):
        vip = cli.inv("create-vip", "--name", "VIP2", "--l3-network-uuid",
                      "PUBLIC-MANAGEMENT-L3")
        R["vip2"] = vip["ip"]
        cli.run("create-port-forwarding-rule", "--name", "PORT-FORWARDING2",
                "--vip-uuid", "VIP2", "--protocol-type", "TCP",
                "--vip-port-start", "2222", "--vip-port-end", "2222",
                "--private-port-start", "22", "--private-port-end", "22",
                "--vm", "VM1")
        ssh.pin(R["vip2"], 2222)
        check(ssh.hostname(c1, R["vip2"], 2222) == "vm1", "not vm1")

    with t.step("a UDP rule carries a datagram (both ways)"):
        cli.run("create-port-forwarding-rule", "--name", "PF-UDP",
                "--vip-uuid", "VIP2", "--protocol-type", "UDP",
                "--vip-port-start", "5000", "--private-port-start", "5000",
                "--vm", "VM1")
        token = "udp-" + secrets.token_hex(4)
        got = udp_echo(c1, R["vip2"], 5000, token)
        check(got == "vm1 " + token, "UDP answer %r" % got)

    with t.step("allowedCidr admits client1 and rejects client2"):
        cli.run("create-port-forwarding-rule", "--name", "PF-CIDR",
                "--vip-uuid", "VIP2", "--protocol-type", "TCP",
                "--vip-port-start", "2223", "--private-port-start", "22",
                "--allowed-cidr", CLIENTS["client1"] + "/32", "--vm", "VM1")
        ssh.pin(R["vip2"], 2223)
        check(ssh.hostname(c1, R["vip2"], 2223) == "vm1", "client1 refused")
        check(refused(c2, R["vip2"], 2223), "client2 admitted")
        check(ssh.hostname(c2, R["vip2"], 2222) == "vm1",
              "client2 lost an unrestricted rule")

    with t.step("disabling PORT-FORWARDING2 closes the port; enabling "
                "reopens it"):
        cli.run("change-port-forwarding-rule-state", "--uuid",
                "PORT-FORWARDING2", "--state-event", "disable")
        check(refused(c1, R["vip2"], 2222), "disabled rule still forwards")
        cli.run("change-port-forwarding-rule-state", "--uuid",
                "PORT-FORWARDING2", "--state-event", "enable")
        check(ssh.hostname(c1, R["vip2"], 2222) == "vm1", "not reopened")

    with t.step("hairpin: VM2 on PRIVATE-L3 reaches VIP2 and lands in "
                "VM1"):
        cli.run("create-port-forwarding-rule", "--name", "PF-HAIRPIN",
                "--vip-uuid", "VIP2", "--protocol-type", "TCP",
                "--vip-port-start", "8080", "--private-port-start", "8080",
                "--vm", "VM1")
        r = ssh.run(c1, R["vip2"], 2222,
                    "(while true; do hostname | busybox nc -l -p 8080; "
                    "done >/dev/null 2>&1 &); echo started")
        check("started" in r.stdout, "listener: %r" % r)
        r = ssh.run(c1, R["vip1"], 22, "echo | busybox nc -w 5 %s 8080"
                    % R["vip2"])
        check(r.stdout.strip() == "vm1", "hairpin from VM2: %r" % r)

    with t.step("a gen gap (the router one change ahead of the inventory, "
                "as after a transaction rolled back once the router had "
                "applied it): the next rule change goes as the whole "
                "configuration, and deltas resume"):
        vr_uuid = R["vr"]["uuid"]

        def vr_gen():
            with sqlite3.connect(srv.db, timeout=10) as d:
                return d.execute("SELECT vrGen FROM vmInstance WHERE "
                                 "uuid = ?", (vr_uuid,)).fetchone()[0]
        gen = vr_gen()
        # Behind the server's back, as the rolled-back transaction would
        # have left it (WAL: the server's connections see it at once).
        with sqlite3.connect(srv.db, timeout=10) as d:
            d.execute("UPDATE vmInstance SET vrGen = vrGen - 1 WHERE "
                      "uuid = ?", (vr_uuid,))
        mark = srv.log.stat().st_size
        cli.run("create-port-forwarding-rule", "--name", "PF-GAP",
                "--vip-uuid", "VIP2", "--protocol-type", "TCP",
                "--vip-port-start", "2230", "--private-port-start", "22",
                "--vm", "VM1")
        ssh.pin(R["vip2"], 2230)
        check(ssh.hostname(c1, R["vip2"], 2230) == "vm1",
              "the rule made across the gap does not forward")
        with open(srv.log, errors="replace") as f:
            f.seek(mark)
            said = f.read()
        check("refused a delta" in said and "whole configuration" in said,
              "the server did not fall back to the whole configuration: "
              "%s" % said[-2000:])
        check(vr_gen() == gen, "vrGen %r after the full sync, want %r"
              % (vr_gen(), gen))
        mark = srv.log.stat().st_size
        cli.run("delete-port-forwarding-rule", "--uuid", "PF-GAP")
        check(refused(c1, R["vip2"], 2230), "PF-GAP deleted, still forwards")
        with open(srv.log, errors="replace") as f:
            f.seek(mark)
            said = f.read()
        check("delta gen %d (on %d) applied" % (gen + 1, gen) in said,
              "the next change did not go as a delta: %s" % said[-2000:])
        check(ssh.hostname(c1, R["vip2"], 2222) == "vm1", "VIP2 lost")

    with t.step("rebooting the virtual router keeps every rule working"):
        r = cli.run("reboot-vm-instance", "--uuid", R["vr"]["uuid"])
        wait_for("the router connected again", lambda: cli.query(
            "vm-instance", "type=ApplianceVm")[0]["vrStatus"] == "Connected",
            timeout=180, interval=1)
        got = wait_for("SSH to VIP1 after the reboot", lambda: ssh.hostname(
            c1, R["vip1"]) == "vm2" and "vm2", timeout=120, interval=2)
        check(got == "vm2", got)
        check(ssh.hostname(c1, R["vip2"], 2222) == "vm1", "VIP2 lost")

    with t.step("deleting VIP1 removes its rules from the data path"):
        cli.run("delete-vip", "--uuid", "VIP1")
        check(not cli.query("port-forwarding-rule", "name=PORT-FORWARDING1"),
              "rule survived its VIP")
        check(refused(c1, R["vip1"], 22), "VIP1:22 still forwards")
        check(ssh.hostname(c1, R["vip2"], 2222) == "vm1", "VIP2 lost")

    with t.step("destroying the virtual router; the next VM recreates it "
                "and every rule works again"):
        cli.run("destroy-vm-instance", "--uuid", R["vr"]["uuid"])
        vr = cli.query("vm-instance", "uuid=" + R["vr"]["uuid"])[0]
        check(vr["state"] == "Destroyed", "%r" % vr)
        check(refused(c1, R["vip2"], 2222), "VIP2 forwards without router")
        create_vm("VM3", "vm3")
        vrs = cli.query("vm-instance", "type=ApplianceVm",
                        "state=Running")
        check(len(vrs) == 1 and vrs[0]["uuid"] != R["vr"]["uuid"]
              and vrs[0]["vrStatus"] == "Connected", "new VR: %r" % vrs)
        got = wait_for("SSH to VIP2:2222 through the new router",
                       lambda: ssh.hostname(c1, R["vip2"], 2222) == "vm1"
                       and "vm1", timeout=180, interval=2)
        check(got == "vm1", got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    args = ap.parse_args()
    tap = Tap(only=args.only)
    env = harness.Env()
    work = tempfile.mkdtemp(prefix="kvmstack-e2e-")

    def _term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _term)
    try:
        ctx = Case("tutorial", env, tap)
        try:
            tutorial(ctx, env, work)
        except StepAbort:
            pass
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: B902
            tap.result(False, "tutorial: (crashed)", "".join(
                traceback.format_exception(type(e), e, e.__traceback__)))
    finally:
        env.close()
        shutil.rmtree(work, ignore_errors=True)
    tap.plan()
    return 1 if tap.failed or tap.n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
