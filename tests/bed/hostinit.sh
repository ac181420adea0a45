#!/bin/bash
# PID 1 of one kvmstack test-bed host.  Started by tests/bed/bed.py as
#   ip netns exec NS unshare --mount --pid --uts --fork --kill-child --mount-proc \
#       --propagation private bash hostinit.sh DIR TAG
# so it runs in the host's own network, mount, UTS and PID namespaces.
# DIR/host.env gives NAME, IP, PLEN; DIR/binds lists "SRC DST" bind mounts
# (private /etc/shadow, /run, /root/.ssh, libvirt dirs ...) that exist only in
# this mount namespace.  TAG (ksbed-<pid>-hN) only marks the process for
# `bed.py cleanup`.  Writes DIR/failed on error; the bed waits for DIR/sshd.pid.
D=$1
trap 'exit 0' TERM
exec </dev/null
fail() { echo "hostinit: $*" >&2; echo "$*" > "$D/failed"; exit 1; }
cd / || fail "cd /"
. "$D/host.env" || fail "cannot read $D/host.env"

# When the owning Python process dies (even by SIGKILL) its end of the watch
# pipe closes; then stop this host (TERM to PID 1 runs the trap above).
if [ -n "$KSBED_WATCH_FD" ]; then
    ( while read -r -u "$KSBED_WATCH_FD" _; do :; done; kill -TERM 1 ) &
    eval "exec $KSBED_WATCH_FD<&-"
fi
unset KSBED_WATCH_FD

# The copies of /run/netns/* that this mount namespace inherited would pin the
# network namespaces of other hosts/beds after their `ip netns del`: drop them.
for m in $(awk '$5 ~ "^/run/netns(/|$)" {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
done

while read -r src dst; do
    [ -n "$src" ] || continue
    mount --bind "$src" "$dst" || fail "mount --bind $src $dst"
done < "$D/binds"

echo "$NAME" > /proc/sys/kernel/hostname || fail "cannot set hostname"
echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null
ip link set lo up && ip addr add "$IP/$PLEN" dev eth0 && ip link set eth0 up \
    || fail "cannot configure eth0"
mkdir -p /run/sshd && chmod 755 /run/sshd || fail "cannot create /run/sshd"
/usr/sbin/sshd -f "$D/ssh/sshd_config" -E "$D/sshd.log" || fail "sshd did not start (see $D/sshd.log)"

# Stay PID 1 and reap every orphan of the host.
while :; do sleep 3600 & wait $!; done
