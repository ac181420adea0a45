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
 * VMs (hostagent/hv.c, libvirt + libxml2):
 *   vm.start {"uuid":U,"name":N,"cpuNum":C,"memorySize":BYTES,
 *       "domainType":"kvm|qemu","rootVolume":V,
 *       "nics":[{"mac":M,"bridge":B,"deviceId":D}],
 *       "consoleLog":PATH} -> {"state":"Running"}
 *       Defines (libvirt domain named U) and starts it; idempotent when
 *       it already runs.
 *   vm.stop {"uuid":U,"force":bool,"timeoutMs":T} -> {"state":"Stopped"}
 *       ACPI shutdown, then destroy after T (at once with force).
 *   vm.reboot {"uuid":U} -> {"state":"Running"}
 *   vm.destroy {"uuid":U} -> {}  Destroys and undefines; idempotent.
 *   vm.list {} -> {"vms":[{"uuid":U,"state":S}]}  Every domain of the
 *       host (S: Running, Stopped, Paused, Crashed).
 *   vm.console {"uuid":U,"tailBytes":N} -> {"text":T}  Serial console log.
 *
 * Events:
 *   {"kind":"event","event":"vm.state","data":{"uuid":U,"state":S,
 *       "reason":R}}  Lifecycle changes as libvirt reports them.
 */
#ifndef KVMSTACK_PROTO_H
#define KVMSTACK_PROTO_H 1

#include <jansson.h>
#include <stdbool.h>

#include "kvmstack/util.h"

#define PROTO_VERSION 1
#define PROTO_MAX_FRAME (4 * 1024 * 1024)

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
