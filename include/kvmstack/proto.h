/* proto.h: the agent protocol between mgmt and kvmstack-agent.
 *
 * Transport: the stdin/stdout of `kvmstack-agent --stdio`, started by mgmt
 * on an SSH exec channel.  Frame: one JSON object on one line, at most
 * PROTO_MAX_FRAME bytes including the newline; anything else closes the
 * channel with protocol-error.  Unknown fields are ignored.
 *
 * Kinds:
 *   {"kind":"init","version":1,"capabilities":[...],"agentVersion":".."}
 *       First frame each way; anything else first is a protocol error.
 *   {"kind":"call","id":N,"method":M,"params":{...}}
 *   {"kind":"reply","id":N,"result":{...}}
 *   {"kind":"reply","id":N,"problem":"not-supported","message":"..."}
 *   {"kind":"event","event":E,"data":{...}}            (no id)
 *   {"kind":"ping","id":N}  ->  {"kind":"pong","id":N}
 * Replies whose id is not outstanding are dropped.
 *
 * Methods (version 1):
 *   host.facts {} -> {"cpus":N,"memoryBytes":N,"architecture":"x86_64",
 *       "hostname":"..","kernel":"..","osRelease":"..",
 *       "libvirtVersion":"9.0.0"|null,"qemuVersion":"7.2.0"|null,
 *       "kvm":true|false}
 *       Facts about the host; versions are null when libvirtd cannot be
 *       reached (the reply says why in "warnings").
 *   agent.exit {} -> {}  The agent replies, then exits (tests, upgrades).
 *
 * Storage (hostagent/storage.c):
 *   storage.mount {"uuid":PS,"url":"host:/export","mountPath":P}
 *       -> {"totalCapacity":N,"availableCapacity":N}
 *       Mounts the NFS export at P (creating P) unless already mounted
 *       there; idempotent.  The mount command is the agent's
 *       configuration (/etc/kvmstack/agent.conf, key nfs_mount_command,
 *       an argv template with {url} and {path}; default
 *       "mount -t nfs -o soft,timeo=100 {url} {path}"), so a test bed may
 *       stand in for NFS without changing this code path.
 *   storage.unmount {"uuid":PS,"mountPath":P} -> {}  Idempotent.
 *   storage.capacity {"mountPath":P} -> {"totalCapacity","availableCapacity"}
 *   image.check {"path":F,"format":"qcow2|raw","sha256":H|null,
 *       "maxVirtualSize":N} -> {"virtualSize","actualSize","sha256",
 *       "format"}  Inspects F with qemu-img info: a format other than the
 *       declared one, a backing file, or a virtual size over the limit is
 *       refused (invalid-argument); a sha256 mismatch too.
 *   image.commit {"tmpPath":F,"path":P} -> {}  Renames a checked
 *       download into the image cache (same filesystem).
 *   volume.create {"path":V,"backingFile":B} -> {"path":V}
 *       qcow2 overlay V over B (qemu-img create -f qcow2 -b B -F qcow2);
 *       idempotent when V exists with that backing file.
 *   volume.delete {"path":V} -> {}  Idempotent.
 *
 * Networks (hostagent/net.c, netlink only; never shells out to ip):
 *   net.bridge.ensure {"type":"L2NoVlanNetwork|L2VlanNetwork|VxlanNetwork",
 *       "physicalInterface":IF,"vlan":N,"vni":N,"bridge":NAME,
 *       "localIp":A,"peers":[A,...]} -> {"bridge":NAME}
 *       NoVlan: bridge NAME over IF (IF's addresses move to NAME).
 *       Vlan: IF.N 802.1q sub-interface enslaved to NAME; not-supported
 *       where the kernel lacks 802.1q.  Vxlan: vxlan device (VNI N, UDP
 *       4789, local A over IF) enslaved to NAME, with an all-zero FDB
 *       entry per peer (unicast head-end replication).  Idempotent.
 *   net.bridge.remove {"bridge":NAME} -> {}  Removes NAME and the VLAN or
 *       VXLAN device under it (not IF); refuses while a VM NIC uses it.
 *
 * VMs (hostagent/hv.c, libvirt qemu:///system + libxml2).  U is the VM
 * uuid, 32 hex digits (either case; the domain is named by it in lower
 * case, its libvirt <uuid> is U with dashes).  While libvirtd is not
 * reachable every vm.* call fails with internal-error ("libvirtd is not
 * reachable ...") and the agent keeps reconnecting every 2 s.  Calls are
 * served one at a time, so a graceful vm.stop holds the channel up to T.
 *   vm.start {"uuid":U,"name":N,"cpuNum":C,"memorySize":BYTES,
 *       "domainType":"kvm|qemu","rootVolume":V,
 *       "nics":[{"mac":M,"bridge":B,"deviceId":D}],
 *       "consoleLog":PATH,"vrChannel":bool} -> {"state":"Running"}
 *       Defines the domain (persistent) and starts it.  N (optional, at
 *       most 255 bytes) becomes the domain <title>.  C 1-512; BYTES at
 *       least 1 MiB, rounded up to KiB.  "kvm" needs a usable /dev/kvm
 *       (else not-supported); "qemu" is TCG.  V: absolute path of a qcow2
 *       volume (its backing chain is found by libvirt), the virtio disk
 *       vda; the guest boots from it (BIOS, SeaBIOS on the serial port).
 *       nics (optional): one virtio <interface type='bridge'> each, in
 *       ascending D (unique, >= 0); M "xx:xx:xx:xx:xx:xx" unicast (either
 *       case; lower-cased), B an existing bridge (1-15 of
 *       A-Za-z0-9_.-).  consoleLog (optional, default
 *       /var/log/libvirt/qemu/U-serial.log; its directory is created): the
 *       serial console's log, truncated at each start.  vrChannel (default
 *       false): adds a virtio-serial port "org.kvmstack.vr.0" whose host
 *       end is the unix socket /var/lib/kvmstack/vr/U.sock (QEMU listens;
 *       for the virtual router's agent).  Paths must be absolute and
 *       normalised.  Bad params: invalid-argument, nothing done.
 *       Idempotent: a domain U that already runs is left as it is (a
 *       paused one is resumed), whatever the params.  A defined, stopped
 *       domain U is redefined with these params and started.  When the
 *       start fails (missing bridge, missing volume...) the reply carries
 *       libvirt's message and a domain defined by this call is undefined
 *       again: no half-made VM stays.
 *   vm.stop {"uuid":U,"force":bool,"timeoutMs":T}
 *       -> {"state":"Stopped","forced":bool}
 *       ACPI power button (pressed again every 5 s: a booting guest may
 *       miss it), waiting up to T ms (0-600000, default 60000) for the
 *       guest to power off, then destroys it (hard power-off);
 *       force destroys at once.  "forced": whether it was destroyed.  The
 *       domain stays defined.  Idempotent: a stopped or absent domain is
 *       {"state":"Stopped","forced":false}.
 *   vm.reboot {"uuid":U,"force":bool} -> {"state":"Running"}
 *       Asks the guest to reboot by ACPI (libvirt powers it down and starts
 *       it again; a guest that ignores ACPI keeps running); force: hard
 *       reset.  Not running: conflict; absent: not-found.
 *   vm.destroy {"uuid":U} -> {}  Destroys if running and undefines
 *       (managed save, snapshot and checkpoint metadata, NVRAM too);
 *       removes the VR socket; keeps the console log.  Idempotent.
 *   vm.list {} -> {"vms":[{"uuid":U,"state":S}]}  Every domain of the
 *       host (also ones kvmstack did not define: U is the domain name).
 *       S: Running (also while shutting down), Stopped, Paused (also
 *       guest-suspended), Crashed (shut off because the guest crashed or
 *       its QEMU died), Unknown.
 *   vm.console {"uuid":U,"tailBytes":N} -> {"text":T,"sizeBytes":S}
 *       The last N bytes (0-524288, default 65536) of the serial console
 *       log, as UTF-8 (invalid bytes become U+FFFD); S: the log's size.
 *       "" before the first start.  Absent domain: not-found.
 *   vm.xml {same params as vm.start} -> {"xml":X}  The domain XML that
 *       vm.start would define, after the same checks (domainType kvm
 *       without a usable /dev/kvm: not-supported); nothing is defined.
 *
 * Virtual routers (hostagent/vr.c relays; hostagent/vr/ is kvmstack-vr):
 *   The VR domain is started with vrChannel; kvmstack-vr inside opens the
 *   virtio-serial port org.kvmstack.vr.0 and speaks this same framing to
 *   the agent over it: first {"kind":"init","version":1,"role":"vr",
 *   "capabilities":["vr.apply","vr.apply.delta"]} (the second since
 *   deltas; informational), then it serves calls.  The agent connects to /var/lib/kvmstack/vr/U.sock
 *   (QEMU's end) for every VR domain it runs, reconnecting as needed.
 *   vr.apply {"uuid":U,"config":C} -> {"gen":G}
 *   vr.apply {"uuid":U,"delta":D} -> {"gen":G}
 *       Relays C (as the VR's params) or D (as {"delta":D}) to the VR U and
 *       waits (up to 30 s) for it to be applied.  not-found when U has no
 *       channel; host-unreachable when kvmstack-vr has not said init yet
 *       (booting); the VR's own problem otherwise.  An agent older than
 *       deltas refuses {"delta":D} (invalid-argument: no "config"), so
 *       does an older kvmstack-vr (no "gen"): both before any side
 *       effect, and mgmt then sends C.
 *   vr.status {"uuid":U} -> {"connected":bool,"gen":G|null}
 *   Event {"kind":"event","event":"vr.state","data":{"uuid":U,
 *       "state":"Connected|Disconnected"}} when kvmstack-vr says init
 *       (after a boot or reboot) or its channel closes: mgmt then sends the
 *       whole config again (the VR keeps nothing mgmt cannot rebuild).
 *
 *   The VR's own method (kvmstack-vr):
 *   vr.apply C -> {"gen":G}  C is the whole desired configuration; the VR
 *       diffs it against what it committed last (kept in memory, never
 *       re-listed from the kernel) and applies the difference: addresses,
 *       dnsmasq, and ONE nftables transaction (a rejected batch leaves the
 *       old ruleset and fails the call with nft's message).  C:
 *       {"gen":G,
 *        "interfaces":[{"mac":M,"role":"public|private",
 *                       "address":"A/PREFIX","gateway":A|null}],
 *        "vips":[A,...],                      (extra /32s on the public NIC)
 *        "snat":[{"source":"CIDR","to":A}],   (private CIDR to public A)
 *        "dhcp":{"subnet":"CIDR","gateway":A,"domain":D|null,
 *                "dns":[A...],"upstreams":[A...],
 *                "hosts":[{"mac":M,"ip":A,"hostname":H|null}]} | null,
 *        "portForwarding":[{"uuid":R,"vip":A,"protocol":"tcp|udp",
 *                "vipPorts":[P1,P2],"guestIp":A,"guestPorts":[Q1,Q2],
 *                "allowedCidr":"CIDR"|null}]}
 *       Rule uuids are unique (a uuid listed twice is invalid-argument);
 *       a rule without one cannot be named by a delta.
 *       Rules live in nftables maps keyed by (VIP, protocol, port), one
 *       element per port (a shifted range VIP 1000-1010 -> 2000-2010 is
 *       11 elements), so a rule change is an element change and lookup
 *       cost does not grow with the number of rules.  A rule removed or
 *       re-targeted has the conntrack entries of its VIP ports flushed.
 *   vr.apply {"delta":D} -> {"gen":G}  D changes some rules of the
 *       configuration the VR holds (C as applied, edited by the deltas
 *       since), so that a change of one rule costs the same at any number
 *       of rules (mgmt sends one for a rule's create, attach, detach,
 *       enable, disable, delete, and a VIP's delete):
 *       {"gen":G, "baseGen":B,
 *        "portForwardingDel":[R,...],          (rule uuids)
 *        "portForwardingAdd":[rule,...],       (as in C's portForwarding,
 *                                               uuid required)
 *        "vipsAdd":[A,...], "vipsDel":[A,...]} (VIP /32s)
 *       Applied only when the VR's gen is B; else conflict, field
 *       "baseGen", "gen gap: have X, delta is based on B" (X is "none"
 *       after a boot, or after a failed apply), and nothing changes: mgmt
 *       then sends the whole C.  Rules of portForwardingDel and the rules
 *       whose uuid portForwardingAdd names go, then portForwardingAdd's
 *       come in: an add of an existing uuid replaces the rule (re-target,
 *       as one change of its elements; the same rule again is nothing),
 *       a del of an unknown uuid is nothing.  vipsAdd adds addresses not
 *       there yet, vipsDel removes those there: the VIP set is mgmt's to
 *       say (it sends a VIP's address with its first rule and takes it
 *       with its last), the VR does not derive it from the rules, just as
 *       in C.  ONE nftables transaction with only these rules' elements,
 *       then the conntrack flush of removed and re-targeted ports, then
 *       the addresses if the VIP set changed; a port of an added rule that
 *       a staying rule forwards is a conflict and nothing changes; a
 *       batch the kernel refuses (the table changed behind the VR's back)
 *       is retried as one full rebuild.  Stats as for C, with
 *       "delta":true.
 *
 * Events:
 *   {"kind":"event","event":"vm.state","data":{"uuid":U,"state":S,
 *       "reason":R}}  Lifecycle changes as libvirt reports them, also those
 *       made behind the agent's back (virsh, a dying QEMU):
 *         Running  R booted, unpaused, restored, migrated, wakeup,
 *                  from-snapshot (a start gives unpaused, then booted)
 *         Paused   R paused, ioerror, watchdog, api-error, pm-memory, ...
 *         Stopped  R shutdown (guest powered off), destroyed, saved,
 *                  migrated, from-snapshot
 *         Crashed  R crashed, panicked, crashloaded, failed (QEMU died)
 *       libvirt's "shutdown finished" notice is not forwarded (Stopped
 *       follows when the domain really stops; after an ACPI reboot it runs
 *       on), nor are define/undefine.  After the agent reconnects to a
 *       restarted libvirtd it sends every domain's state once with R
 *       "resync" (events of the gap are lost).
 */
#ifndef KVMSTACK_PROTO_H
#define KVMSTACK_PROTO_H 1

#include <jansson.h>
#include <stdbool.h>

#include "kvmstack/util.h"

#define PROTO_VERSION 1
/* A full VR configuration of 30,000 rules is about 6 MB of JSON. */
#define PROTO_MAX_FRAME (64 * 1024 * 1024)

/* Serializes 'msg' as one frame (compact JSON + '\n'); caller frees. */
char *proto_encode(json_t *msg);

/* Takes the next complete line out of 'buf' and parses it.  Returns 1 with
 * '*msg' set (caller owns), 0 when no complete line is buffered, -1 with a
 * protocol-error reported when the line is not a JSON object or is too
 * long. */
int proto_next(struct sbuf *buf, json_t **msg);

/* The "kind" of a frame, or "" when absent. */
const char *proto_kind(json_t *msg);

#endif
