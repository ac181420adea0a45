#!/bin/bash
# images/build-vr.sh [OUTDIR [KVMSTACK_VR_BINARY]]: build the virtual-router
# appliance image, the counterpart of the tutorial's VIRTUAL-ROUTER image.
# Run by `make images` (which passes build/kvmstack-vr when it exists);
# OUTDIR defaults to build/images.
#
# Writes into OUTDIR:
#   kvmstack-vr.qcow2           bootable disk (FAT + SYSLINUX, same kernel as
#                               the test guest), compressed qcow2
#   kvmstack-vr.qcow2.sha256    "<sha256>  kvmstack-vr.qcow2"
#   kvmstack-vr.vmlinuz, kvmstack-vr.initrd.gz   for direct kernel boot
# The initramfs: static busybox, nft and dnsmasq (Debian's, with their
# libraries), the virtio, virtio_console, ACPI and nf_tables/NAT/conntrack
# modules, and images/vr-init as /init, which starts /usr/sbin/kvmstack-vr
# when the binary was given (copied in with its libraries) and otherwise
# prints VR-READY.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

OUT=${1:-$here/../build/images}
VRBIN=${2:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache
NAME=kvmstack-vr

need apt-get apt-cache dpkg-deb cpio gzip mformat mcopy syslinux qemu-img ldd flock
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static; make images-deps)"
[ -z "$VRBIN" ] || [ -x "$VRBIN" ] || die "$VRBIN is not an executable"
t0=$(date +%s.%N)

kernel_fetch "$CACHE"
log "kernel $KPKG ($(basename "$KDEB"))"

WORK=$(mktemp -d "$OUT/.build-vr.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
G=$WORK/root
initrd_skeleton "$G"

add_modules "$G" virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev \
    virtio_pci failover net_failover virtio_net virtio_blk virtio_console \
    button evdev \
    nfnetlink libcrc32c nf_tables nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack \
    nf_nat nft_chain_nat nft_nat nft_masq nft_redir nft_ct nf_conntrack_netlink \
    nf_reject_ipv4 nf_reject_ipv6 nft_reject nft_reject_ipv4 nft_reject_inet \
    nft_limit nft_fib nft_fib_ipv4 nft_fib_inet nf_log_syslog nft_log
log "modules: $(tr '\n' ' ' < "$G/etc/modules.order")"

add_binary "$G" /usr/sbin/nft /sbin
add_binary "$G" /usr/sbin/dnsmasq /sbin
if [ -n "$VRBIN" ]; then
    add_binary "$G" "$VRBIN" /sbin
    [ "$(basename "$VRBIN")" = kvmstack-vr ] || mv "$G/sbin/$(basename "$VRBIN")" "$G/sbin/kvmstack-vr"
    log "with $VRBIN as /usr/sbin/kvmstack-vr"
fi

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$G/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$G/etc/group"
echo 'root:*:19000:0:99999:7:::' > "$G/etc/shadow"
chmod 600 "$G/etc/shadow"
printf 'export PATH=/bin:/sbin\n' > "$G/etc/profile"
echo "$NAME" > "$G/etc/hostname"
printf '127.0.0.1 localhost\n' > "$G/etc/hosts"
: > "$G/etc/resolv.conf"
for f in /etc/services /etc/protocols; do
    [ -f "$f" ] && cp "$f" "$G$f"
done
mkdir -p "$G/var/lib/misc"

mkdir -p "$G/etc/acpi/PWRF"
printf '#!/bin/sh\necho "VR-POWEROFF (ACPI)" > /dev/console\nsync\npoweroff -f\n' \
    > "$G/etc/acpi/PWRF/00000080"
chmod 755 "$G/etc/acpi/PWRF/00000080"
install -m 755 "$here/vr-init" "$G/init"

pack_initrd "$G" "$WORK/initrd.gz"
make_bootdisk "$VMLINUZ" "$WORK/initrd.gz" "console=ttyS0,115200 quiet" KVMSTACKVR \
    "$WORK/$NAME.qcow2" "$WORK"
qemu-img check -q "$WORK/$NAME.qcow2.tmp"

cp "$VMLINUZ" "$OUT/$NAME.vmlinuz"
cp "$WORK/initrd.gz" "$OUT/$NAME.initrd.gz"
( cd "$WORK" && mv "$NAME.qcow2.tmp" "$NAME.qcow2" &&
  sha256sum "$NAME.qcow2" > "$NAME.qcow2.sha256" )
mv "$WORK/$NAME.qcow2.sha256" "$OUT/$NAME.qcow2.sha256"
mv "$WORK/$NAME.qcow2" "$OUT/$NAME.qcow2"
log "$OUT/$NAME.qcow2: $(stat -c %s "$OUT/$NAME.qcow2") bytes" \
    "(initrd $(stat -c %s "$OUT/$NAME.initrd.gz")) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
