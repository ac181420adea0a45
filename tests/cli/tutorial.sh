#!/usr/bin/env bash
# tests/cli/tutorial.sh: the elastic port-forwarding tutorial
# (/work/shared/seed/elastic-port-forwarding-tutorial.md), step by step,
# with the kvmstack CLI and names only, against a running server, for
# real: on a KVM test host the server bootstraps over SSH, with NFS
# primary storage (through the host's stand-in), SFTP backup storage, the
# test images, bridges, and VM1/VM2 started (InstantStart, the default).
#
# Needs: KVMSTACK_URL (the server, e.g. http://127.0.0.1:5111) and either
# KVMSTACK_SESSION or KVMSTACK_PASSWORD (the admin password; the script
# then logs in itself and logs out at the end).  The server must have a
# fresh database: the tutorial's names must not exist yet.  It does not
# start a server.  Optional: KVMSTACK_CLI (the binary; default
# $KVMSTACK_BUILD/kvmstack, KVMSTACK_BUILD defaulting to build/ of the
# repository).  The test host, as tests/run lends it (tests/bed):
#   KVMSTACK_TEST_HOST_IP, KVMSTACK_TEST_HOST_PASSWORD  its SSH address and
#       root password (add-kvm-host, add-sftp-backup-storage);
#   KVMSTACK_TEST_IMAGE_URL  file:// URL of build/images/test-guest.qcow2,
#       the tutorial's ttylinux (default: that file);
#   KVMSTACK_TEST_PUBLIC_IF  the host's spare interface for
#       PUBLIC-MANAGEMENT-L2 (its eth0 is its management link).
# The host's agent mounts a local stand-in folder in place of the NFS
# export 192.168.0.212:/usr/local/zstack/nfs_root (this kernel has no NFS
# client; that address is never contacted), and this kernel lacks 802.1q:
# the tutorial's VLAN 100 must fail saying so, and PRIVATE-L2 is VXLAN
# VNI 100 instead.  VIRTUAL-ROUTER is build/images/kvmstack-vr.qcow2 (else
# the test image).  Without a test host, the steps that need one are
# reported as SKIP with the reason; nothing outside the test bed and the
# loopback is ever contacted.
#
# Prints TAP ("ok N - ...", "not ok N - ...", the plan "1..N" last) and
# exits non-zero if any test failed.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${KVMSTACK_BUILD:-build}
case $build in
    /*) ;;
    *) build=$root/$build ;;
esac
K=${KVMSTACK_CLI:-$build/kvmstack}
host_ip=${KVMSTACK_TEST_HOST_IP:-}
host_password=${KVMSTACK_TEST_HOST_PASSWORD:-}
image_url=${KVMSTACK_TEST_IMAGE_URL:-file://$build/images/test-guest.qcow2}
public_if=${KVMSTACK_TEST_PUBLIC_IF:-}
nfs_url=192.168.0.212:/usr/local/zstack/nfs_root
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Never read or write the session file of whoever runs the test.
export HOME=$tmp

n=0
failed=0
rc=0
no_host=""     # Why the steps that need the test host cannot run.

if [ -z "${KVMSTACK_URL:-}" ]; then
    echo "Bail out! KVMSTACK_URL is not set"
    exit 1
fi
if [ -z "${KVMSTACK_SESSION:-}" ] && [ -z "${KVMSTACK_PASSWORD:-}" ]; then
    echo "Bail out! set KVMSTACK_SESSION or KVMSTACK_PASSWORD"
    exit 1
fi
if [ ! -x "$K" ]; then
    echo "Bail out! no CLI at $K (build it with make)"
    exit 1
fi
if [ -z "$host_ip" ] || [ -z "$host_password" ]; then
    no_host="no test host (KVMSTACK_TEST_HOST_IP and \
KVMSTACK_TEST_HOST_PASSWORD; tests/run as root lends one from tests/bed)"
fi

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    shift
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
}

# run ARGS...: runs the CLI with --json; the answer goes to $tmp/out, the
# messages (job progress, errors) to $tmp/err, the exit status to $rc.
run() {
    "$K" --json "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# run_text ARGS...: like run, without --json (the tables for people).
run_text() {
    "$K" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# holds PYEXPR: true if the last answer (d; its inventory inv and its
# inventories invs) makes the Python expression true.
holds() {
    python3 - "$tmp/out" "$1" <<'EOF' 2>>"$tmp/err"
import json
import sys
d = json.load(open(sys.argv[1]))
inv = d.get("inventory") if isinstance(d, dict) else None
invs = d.get("inventories") if isinstance(d, dict) else None
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# expect DESC PYEXPR: one test: the last run exited 0 and PYEXPR holds.
expect() {
    if [ "$rc" -eq 0 ] && holds "$2"; then
        ok "$1"
    else
        not_ok "$1" "exit status $rc; expected: $2" \
            "stderr: $(tail -c 2000 "$tmp/err")" \
            "answer: $(head -c 2000 "$tmp/out")"
    fi
}

# expect_fail DESC STATUS REGEX: the last run exited STATUS and its
# stderr matches REGEX (grep -E).
expect_fail() {
    if [ "$rc" -eq "$2" ] && grep -Eq -- "$3" "$tmp/err"; then
        ok "$1"
    else
        not_ok "$1" "exit status $rc (expected $2); stderr should match $3" \
            "stderr: $(tail -c 2000 "$tmp/err")"
    fi
}

# skip DESC REASON: a test that cannot run here.
skip() {
    n=$((n + 1))
    echo "ok $n - $1 # SKIP $2"
}

# blocked DESC: true, after a SKIP for DESC, when there is no test host:
# every step from the host on needs it (or what it made).
blocked() {
    if [ -n "$no_host" ]; then
        skip "$1" "$no_host"
        return 0
    fi
    return 1
}

# get PYEXPR: prints the value of PYEXPR over the last answer.
get() {
    python3 - "$tmp/out" "$1" 2>/dev/null <<'EOF'
import json
import sys
d = json.load(open(sys.argv[1]))
inv = d.get("inventory") if isinstance(d, dict) else None
invs = d.get("inventories") if isinstance(d, dict) else None
v = eval(sys.argv[2])
print("" if v is None else v)
EOF
}

# image_file URL: the local file of a file:// URL, with its .sha256.
image_file() {
    case $1 in
        file:///*) printf '%s\n' "${1#file://}" ;;
        *) printf '%s\n' "" ;;
    esac
}

# check_image DESC FILE: the last answer is a Ready image whose sha256
# and size are those of FILE.
check_image() {
    local sha size
    sha=$(cut -d' ' -f1 "$2.sha256" 2>/dev/null)
    size=$(stat -c %s "$2" 2>/dev/null)
    expect "$1" \
        "inv['status'] == 'Ready' and inv['sha256Sum'] == '$sha' \
         and inv['actualSize'] == int('${size:-0}') \
         and inv['backupStorageRefs'][0]['backupStorageUuid'] == '$bs'"
}

# 3. Log in.
logged_in=false
if [ -z "${KVMSTACK_SESSION:-}" ]; then
    run login
    expect "login as admin" 'len(inv["uuid"]) == 32'
    KVMSTACK_SESSION=$(get 'inv["uuid"]')
    export KVMSTACK_SESSION
    logged_in=true
fi
unset KVMSTACK_PASSWORD
run query-zone --count
expect "the session works: query-zone --count" 'd["total"] == 0'

# 4. Zone.
run create-zone ZONE1
expect "create-zone ZONE1" \
    'inv["name"] == "ZONE1" and inv["state"] == "Enabled"'
zone=$(get 'inv["uuid"]')

# 5. Cluster, in the zone given by name.
run create-cluster CLUSTER1 --zone-uuid ZONE1 --hypervisor-type KVM
expect "create-cluster CLUSTER1 in ZONE1 (by name)" \
    "inv['zoneUuid'] == '$zone' and inv['hypervisorType'] == 'KVM'"
cluster=$(get 'inv["uuid"]')

# 6. Host: a job whose progress (the playbook's tasks) the CLI prints; the
# password comes from stdin and is never echoed.
blocked "add-kvm-host HOST1: a job, Connected" || {
    printf '%s\n' "$host_password" >"$tmp/pw"
    run add-kvm-host HOST1 --cluster-uuid CLUSTER1 \
        --management-ip "$host_ip" --password-stdin <"$tmp/pw"
    expect "add-kvm-host HOST1: a job, Connected" \
        "inv['name'] == 'HOST1' and inv['clusterUuid'] == '$cluster' \
         and inv['managementIp'] == '$host_ip' \
         and inv['status'] == 'Connected'"
    host=$(get 'inv["uuid"]')
    if grep -q '^kvmstack: AddKVMHost: ' "$tmp/err"; then
        ok "add-kvm-host printed the job's progress"
    else
        not_ok "add-kvm-host printed the job's progress" \
            "stderr: $(tail -c 2000 "$tmp/err")"
    fi
    if grep -qF -- "$host_password" "$tmp/out" "$tmp/err"; then
        not_ok "the host password appears in no output"
    else
        ok "the host password appears in no output"
    fi
}

# 7. Primary storage, attached to the cluster: a job that mounts it on
# HOST1 (through the host's NFS stand-in).
run add-nfs-primary-storage PRIMARY-STORAGE1 --zone-uuid ZONE1 \
    --url "$nfs_url"
expect "add-nfs-primary-storage PRIMARY-STORAGE1 ($nfs_url)" \
    "inv['url'] == '$nfs_url' and inv['type'] == 'NFS'"
blocked "attach-primary-storage-to-cluster PRIMARY-STORAGE1 CLUSTER1: \
mounted on HOST1 through the NFS stand-in, Connected" || {
    run attach-primary-storage-to-cluster PRIMARY-STORAGE1 CLUSTER1
    expect "attach-primary-storage-to-cluster PRIMARY-STORAGE1 CLUSTER1: \
mounted on HOST1 through the NFS stand-in, Connected" \
        "inv['attachedClusterUuids'] == ['$cluster'] \
         and inv['status'] == 'Connected' and inv['totalCapacity'] > 0"
}

# 8. Backup storage (a job: here with --no-wait, then wait-api-job), then
# attached to the zone.
blocked "add-sftp-backup-storage --no-wait answers the job's location" || {
    run add-sftp-backup-storage BACKUP-STORAGE1 --hostname "$host_ip" \
        --url /backupStorage --password-stdin --no-wait <"$tmp/pw"
    expect "add-sftp-backup-storage --no-wait answers the job's location" \
        "'/zstack/v1/api-jobs/' in d['location']"
    location=$(get 'd["location"]')
    run wait-api-job "$location"
    expect "wait-api-job: BACKUP-STORAGE1 added, Connected" \
        "inv['name'] == 'BACKUP-STORAGE1' and inv['url'] == '/backupStorage' \
         and inv['status'] == 'Connected'"
    bs=$(get 'inv["uuid"]')
    if grep -qF -- "$host_password" "$tmp/out" "$tmp/err"; then
        not_ok "the storage password appears in no output"
    else
        ok "the storage password appears in no output"
    fi
    rm -f "$tmp/pw"
    run attach-backup-storage-to-zone BACKUP-STORAGE1 ZONE1
    expect "attach-backup-storage-to-zone BACKUP-STORAGE1 ZONE1" \
        "inv['attachedZoneUuids'] == ['$zone']"
}

# 9. Images (jobs: downloaded onto the backup storage and checked):
# ttylinux for VMs, VIRTUAL-ROUTER as a system image.
tty_file=$(image_file "$image_url")
vr_url=$image_url
vr_file=$tty_file
if [ -f "$build/images/kvmstack-vr.qcow2" ]; then
    vr_file=$build/images/kvmstack-vr.qcow2
    vr_url=file://$vr_file
fi
blocked "add-image ttylinux from the test image: Ready, its sha256" || {
    if [ -z "$tty_file" ] || [ ! -f "$tty_file" ]; then
        not_ok "add-image ttylinux from the test image: Ready, its sha256" \
            "KVMSTACK_TEST_IMAGE_URL=$image_url: not a file:// URL of an \
existing file (run make images)"
    else
        run add-image ttylinux --backup-storage-uuids BACKUP-STORAGE1 \
            --format qcow2 --media-type RootVolumeTemplate \
            --platform Linux --url "$image_url"
        check_image "add-image ttylinux from the test image: Ready, its \
sha256" "$tty_file"
        run query-image name=ttylinux
        expect "query-image ttylinux: not a system image" \
            "len(invs) == 1 and invs[0]['system'] is False \
             and invs[0]['mediaType'] == 'RootVolumeTemplate'"
    fi
}
blocked "add-image VIRTUAL-ROUTER --system: Ready, its sha256" || {
    run add-image VIRTUAL-ROUTER --backup-storage-uuids BACKUP-STORAGE1 \
        --format qcow2 --media-type RootVolumeTemplate --platform Linux \
        --url "$vr_url" --system
    check_image "add-image VIRTUAL-ROUTER --system: Ready, its sha256" \
        "$vr_file"
    vr_image=$(get 'inv["uuid"]')
}

# 10. L2 networks.  PUBLIC-MANAGEMENT-L2 on the host's spare interface (a
# job: a bridge on HOST1).  PRIVATE-L2: the tutorial's VLAN 100 fails on
# this kernel (no 802.1q) and leaves no attachment; VXLAN VNI 100 stands
# in for it.
pif=${public_if:-eth0}
run create-l2-no-vlan-network PUBLIC-MANAGEMENT-L2 --zone-uuid ZONE1 \
    --physical-interface "$pif"
expect "create-l2-no-vlan-network PUBLIC-MANAGEMENT-L2 on $pif" \
    "inv['type'] == 'L2NoVlanNetwork' and inv['physicalInterface'] == '$pif'"
run create-l2-vlan-network PRIVATE-L2 --zone-uuid ZONE1 \
    --physical-interface eth0 --vlan 100
expect "create-l2-vlan-network PRIVATE-L2 on VLAN 100" \
    "inv['type'] == 'L2VlanNetwork' and inv['vlan'] == 100"
blocked "attach-l2-network-to-cluster PUBLIC-MANAGEMENT-L2 CLUSTER1 \
(a bridge on HOST1)" || {
    if [ -z "$public_if" ]; then
        not_ok "attach-l2-network-to-cluster PUBLIC-MANAGEMENT-L2 CLUSTER1 \
(a bridge on HOST1)" "KVMSTACK_TEST_PUBLIC_IF is not set (tests/run makes \
data0): eth0 is the host's management link"
    else
        run attach-l2-network-to-cluster PUBLIC-MANAGEMENT-L2 CLUSTER1
        expect "attach-l2-network-to-cluster PUBLIC-MANAGEMENT-L2 CLUSTER1 \
(a bridge on HOST1)" "inv['attachedClusterUuids'] == ['$cluster']"
    fi
}
blocked "attach-l2-network-to-cluster PRIVATE-L2 (VLAN 100) fails: this \
kernel lacks 802.1q" || {
    run attach-l2-network-to-cluster PRIVATE-L2 CLUSTER1
    expect_fail "attach-l2-network-to-cluster PRIVATE-L2 (VLAN 100) fails: \
this kernel lacks 802.1q" 1 '802\.1q'
    run query-l2-network name=PRIVATE-L2
    expect "the failed attach left PRIVATE-L2 (VLAN) unattached" \
        "len(invs) == 1 and invs[0]['attachedClusterUuids'] == []"
    run delete-l2-network PRIVATE-L2
    expect "delete-l2-network PRIVATE-L2 (VLAN 100): VXLAN replaces it" \
        "True"
    run create-l2-vxlan-network PRIVATE-L2 --zone-uuid ZONE1 \
        --physical-interface eth0 --vni 100
    expect "create-l2-vxlan-network PRIVATE-L2 VNI 100 (VXLAN stands in for \
the tutorial's VLAN 100 here)" \
        "inv['type'] == 'VxlanNetwork' and inv['vni'] == 100"
    run attach-l2-network-to-cluster PRIVATE-L2 CLUSTER1
    expect "attach-l2-network-to-cluster PRIVATE-L2 (VXLAN) CLUSTER1 (a \
bridge on HOST1)" "inv['attachedClusterUuids'] == ['$cluster']"
}

# 11. L3 networks: the public system network with a range, the private one
# with a CIDR range, DNS and the VirtualRouter services.
run create-l3-network PUBLIC-MANAGEMENT-L3 \
    --l2-network-uuid PUBLIC-MANAGEMENT-L2 --system
expect "create-l3-network PUBLIC-MANAGEMENT-L3 --system" \
    "inv['system'] is True and inv['category'] == 'System'"
run add-ip-range PUBLIC-MANAGEMENT-L3 --name PUBLIC-IP-RANGE \
    --start-ip 198.51.100.230 --end-ip 198.51.100.240 \
    --netmask 255.255.255.0 --gateway 198.51.100.1
expect "add-ip-range PUBLIC-IP-RANGE 198.51.100.230-240" \
    "inv['startIp'] == '198.51.100.230' and inv['endIp'] == '198.51.100.240' \
     and inv['gateway'] == '198.51.100.1'"
run create-l3-network PRIVATE-L3 --l2-network-uuid PRIVATE-L2 \
    --dns-domain tutorials.zstack.org
expect "create-l3-network PRIVATE-L3 --dns-domain tutorials.zstack.org" \
    "inv['dnsDomain'] == 'tutorials.zstack.org' and inv['system'] is False"
run add-ip-range-by-network-cidr PRIVATE-L3 --name PRIVATE-IP-RANGE \
    --network-cidr 10.0.0.0/24
expect "add-ip-range-by-network-cidr PRIVATE-IP-RANGE 10.0.0.0/24" \
    "inv['networkCidr'] == '10.0.0.0/24' and inv['gateway'] == '10.0.0.1'"
run add-dns-to-l3-network PRIVATE-L3 198.51.100.53
expect "add-dns-to-l3-network PRIVATE-L3 198.51.100.53" "inv['dns'] == ['198.51.100.53']"
run attach-network-service-to-l3-network PRIVATE-L3 \
    --provider VirtualRouter --services DHCP,DNS,SNAT,PortForwarding
expect "attach-network-service-to-l3-network PRIVATE-L3 (VirtualRouter)" \
    "sorted(s['networkServiceType'] for s in inv['networkServices']) \
     == ['DHCP', 'DNS', 'PortForwarding', 'SNAT']"

# 12. Instance offering.
run create-instance-offering 512M-512HZ --cpu-num 1 --cpu-speed 512 \
    --memory-size 512M
expect "create-instance-offering 512M-512HZ (memory 512M)" \
    "inv['cpuNum'] == 1 and inv['cpuSpeed'] == 512 \
     and inv['memorySize'] == 512 * 1024 * 1024"

# 13. Virtual router offering.
blocked "create-virtual-router-offering VR-OFFERING (default)" || {
    run create-virtual-router-offering VR-OFFERING --zone-uuid ZONE1 \
        --cpu-num 1 --cpu-speed 512 --memory-size 512M \
        --image-uuid VIRTUAL-ROUTER \
        --management-network-uuid PUBLIC-MANAGEMENT-L3 \
        --public-network-uuid PUBLIC-MANAGEMENT-L3 --is-default
    expect "create-virtual-router-offering VR-OFFERING (default)" \
        "inv['isDefault'] is True and inv['imageUuid'] == '$vr_image'"
}

# 14. VM1 on the private network, started (InstantStart, the default: a
# job the CLI waits for).
blocked "create-vm-instance VM1 --hostname vm1: Running on HOST1" || {
    run create-vm-instance VM1 --instance-offering-uuid 512M-512HZ \
        --image-uuid ttylinux --l3-network-uuids PRIVATE-L3 --hostname vm1
    expect "create-vm-instance VM1 --hostname vm1: Running on HOST1" \
        "inv['hostname'] == 'vm1' and inv['state'] == 'Running' \
         and inv['hostUuid'] == '$host' and len(inv['vmNics']) == 1 \
         and inv['vmNics'][0]['ip'].startswith('10.0.0.')"
    vm1_ip=$(get 'inv["vmNics"][0]["ip"]')
    vm1_nic=$(get 'inv["vmNics"][0]["uuid"]')
}

# 15. A VIP and PORT-FORWARDING1: TCP 22 -> 22 on VM1.
run create-vip VIP1 --l3-network-uuid PUBLIC-MANAGEMENT-L3
expect "create-vip VIP1 on PUBLIC-MANAGEMENT-L3" \
    "230 <= int(inv['ip'].split('.')[3]) <= 240"
vip1_ip=$(get 'inv["ip"]')
blocked "create-port-forwarding-rule PORT-FORWARDING1 on VM1" || {
    run create-port-forwarding-rule PORT-FORWARDING1 --vip-uuid VIP1 \
        --protocol-type TCP --vip-port-start 22 --vip-port-end 22 \
        --private-port-start 22 --private-port-end 22 --vm VM1
    expect "create-port-forwarding-rule PORT-FORWARDING1 on VM1" \
        "inv['guestIp'] == '$vm1_ip' and inv['vipIp'] == '$vip1_ip' \
         and inv['vmNicUuid'] == '$vm1_nic' \
         and inv['vipPortStart'] == 22 and inv['privatePortStart'] == 22"
}
blocked "check-vip-port-availability VIP1 TCP 22: taken" || {
    run check-vip-port-availability VIP1 --protocol-type TCP --start 22
    expect "check-vip-port-availability VIP1 TCP 22: taken" \
        "d['available'] is False"
}

# 16. VM2, then PORT-FORWARDING1 detached from VM1 and attached to VM2.
blocked "create-vm-instance VM2 --hostname vm2: Running on HOST1" || {
    run create-vm-instance VM2 --instance-offering-uuid 512M-512HZ \
        --image-uuid ttylinux --l3-network-uuids PRIVATE-L3 --hostname vm2
    expect "create-vm-instance VM2 --hostname vm2: Running on HOST1" \
        "inv['hostname'] == 'vm2' and inv['state'] == 'Running' \
         and inv['hostUuid'] == '$host'"
    vm2_ip=$(get 'inv["vmNics"][0]["ip"]')
    vm2_nic=$(get 'inv["vmNics"][0]["uuid"]')
}
blocked "detach-port-forwarding-rule PORT-FORWARDING1" || {
    run detach-port-forwarding-rule PORT-FORWARDING1
    expect "detach-port-forwarding-rule PORT-FORWARDING1" \
        "inv['guestIp'] is None and inv['vmNicUuid'] is None"
    run query-port-forwarding-rule name=PORT-FORWARDING1
    expect "query-port-forwarding-rule --json: PORT-FORWARDING1 detached" \
        "len(invs) == 1 and invs[0]['vmNicUuid'] is None \
         and invs[0]['guestIp'] is None and invs[0]['state'] == 'Enabled'"
}
blocked "get-port-forwarding-rule-candidate-nics lists VM1 and VM2" || {
    run get-port-forwarding-rule-candidate-nics PORT-FORWARDING1
    expect "get-port-forwarding-rule-candidate-nics lists VM1 and VM2" \
        "{'$vm1_nic', '$vm2_nic'} <= {i['uuid'] for i in invs} \
         and {'$vm1_ip', '$vm2_ip'} <= {i['ip'] for i in invs}"
}
blocked "attach-port-forwarding-rule PORT-FORWARDING1 --vm VM2" || {
    run attach-port-forwarding-rule PORT-FORWARDING1 --vm VM2
    expect "attach-port-forwarding-rule PORT-FORWARDING1 --vm VM2" \
        "inv['guestIp'] == '$vm2_ip' and '$vm2_ip' != '$vm1_ip' \
         and inv['vmNicUuid'] == '$vm2_nic'"
}
blocked "query-port-forwarding-rule --json: PORT-FORWARDING1 forwards to \
VM2" || {
    run query-port-forwarding-rule name=PORT-FORWARDING1
    expect "query-port-forwarding-rule --json: PORT-FORWARDING1 forwards to \
VM2" "len(invs) == 1 and invs[0]['guestIp'] == '$vm2_ip' \
      and invs[0]['vmNicUuid'] == '$vm2_nic' \
      and invs[0]['vipIp'] == '$vip1_ip'"
}

# 17. A second VIP and PORT-FORWARDING2: TCP 2222 -> 22 on VM1.
run create-vip VIP2 --l3-network-uuid PUBLIC-MANAGEMENT-L3
expect "create-vip VIP2" "inv['ip'] != '$vip1_ip'"
vip2_ip=$(get 'inv["ip"]')
blocked "create-port-forwarding-rule PORT-FORWARDING2 2222 -> VM1:22" || {
    run create-port-forwarding-rule PORT-FORWARDING2 --vip-uuid VIP2 \
        --protocol-type TCP --vip-port-start 2222 --vip-port-end 2222 \
        --private-port-start 22 --private-port-end 22 --vm VM1
    expect "create-port-forwarding-rule PORT-FORWARDING2 2222 -> VM1:22" \
        "inv['vipIp'] == '$vip2_ip' and inv['vipPortStart'] == 2222 \
         and inv['privatePortStart'] == 22 and inv['guestIp'] == '$vm1_ip'"
}

# The table for people names both rules and their guests.
blocked "query-port-forwarding-rule prints a table of both rules" || {
    run_text query-port-forwarding-rule
    if [ "$rc" -eq 0 ] && head -1 "$tmp/out" | grep -q 'guestIp' \
            && grep -q "PORT-FORWARDING1 .*$vm2_ip" "$tmp/out" \
            && grep -q "PORT-FORWARDING2 .*$vm1_ip" "$tmp/out"; then
        ok "query-port-forwarding-rule prints a table of both rules"
    else
        not_ok "query-port-forwarding-rule prints a table of both rules" \
            "exit status $rc" "$(cat "$tmp/out" "$tmp/err")"
    fi
}

# Errors: the server's, with the field named; a name that does not exist;
# a usage error.
run create-port-forwarding-rule BAD-RULE --vip-uuid VIP1 \
    --protocol-type TCP --vip-port-start 70000
expect_fail "a bad port exits 1 naming the field" 1 \
    'vipPortStart.*--vip-port-start'
run create-vip VIP3 --l3-network-uuid NO-SUCH-L3
expect_fail "an unknown name exits 1 and says so" 1 \
    "no L3 network named 'NO-SUCH-L3'"
run create-zone ZONE9 --no-such-option 1
expect_fail "an unknown option exits 2 naming it" 2 '--no-such-option'
run query-port-forwarding-rule --count
if [ -n "$no_host" ]; then
    expect "the failed calls created nothing" 'd["total"] == 0'
else
    expect "the failed calls created nothing" 'd["total"] == 2'
fi

# Teardown, through the CLI: destroying a VM on a host is a job.  The
# host is shared with the next tier: no guest may be left running.
blocked "destroy-vm-instance VM2 and VM1 (jobs): Destroyed, rules \
detached" || {
    run destroy-vm-instance VM2
    r2=$rc
    run destroy-vm-instance VM1
    r1=$rc
    run query-vm-instance name?=VM1,VM2
    rc=$((r1 + r2 + rc))
    expect "destroy-vm-instance VM2 and VM1 (jobs): Destroyed, rules \
detached" "len(invs) == 2 and all(v['state'] == 'Destroyed' \
            and v['hostUuid'] is None for v in invs)"
    run query-port-forwarding-rule
    expect "the rules survive their VMs, detached" \
        "len(invs) == 2 and all(r['vmNicUuid'] is None for r in invs)"
    run query-vm-instance state!=Destroyed
    vrs=$(get "' '.join(v['uuid'] for v in invs if v['hostUuid'])")
    rc=0
    for vr in $vrs; do
        run destroy-vm-instance "$vr"
        [ "$rc" -eq 0 ] || break
    done
    run query-vm-instance state!=Destroyed
    expect "nothing is left on HOST1 (the virtual router destroyed too)" \
        "all(v['hostUuid'] is None for v in invs)"
}

if $logged_in; then
    run logout
    if [ "$rc" -eq 0 ]; then
        run query-zone
        expect_fail "logout revokes the session" 1 'session'
    else
        not_ok "logout" "exit status $rc" "$(cat "$tmp/err")"
    fi
fi

echo "1..$n"
[ "$failed" -eq 0 ]
