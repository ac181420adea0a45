#!/bin/bash
# images/build-guest.sh [OUTDIR]: build kvmstack's test guest image (the
# stand-in for the tutorial's ttylinux) from Debian packages.  Run by
# `make images`; OUTDIR defaults to build/images.
#
# Writes into OUTDIR:
#   test-guest.qcow2             bootable disk (FAT + SYSLINUX + kernel +
#                                initramfs), compressed qcow2; usable as a
#                                backing file
#   test-guest.qcow2.sha256      "<sha256>  test-guest.qcow2"
#   test-guest.hostkey.pub       the guest's fixed dropbear host key
#                                ("ssh-ed25519 AAAA... root@test-guest")
#   test-guest.vmlinuz, test-guest.initrd.gz
#                                the same kernel and initramfs, for direct
#                                kernel boot (<kernel>/<initrd> in libvirt)
#   cache/                       downloaded .debs, unpacked kernel, host key
# The guest: DHCP on its first NIC (hostname from the DHCP hostname option),
# ACPI power-off, dropbear with root / password "password", progress lines
# GUEST-UP, NET, HOSTNAME, GUEST-READY on ttyS0 (see images/guest-init).
# Needs root only for `make images-deps`; the build itself needs no mounts.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

OUT=${1:-$here/../build/images}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache
GUEST_PASSWORD=password
NAME=test-guest

need apt-get apt-cache dpkg-deb cpio gzip mformat mcopy syslinux qemu-img \
     dropbearkey ldd openssl flock
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static; make images-deps)"
t0=$(date +%s.%N)

kernel_fetch "$CACHE"
log "kernel $KPKG ($(basename "$KDEB"))"

WORK=$(mktemp -d "$OUT/.build-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
G=$WORK/root
initrd_skeleton "$G"

# kernel modules (virtio_console for the agent channel of issue 5)
add_modules "$G" virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev \
    virtio_pci failover net_failover virtio_net virtio_blk virtio_console \
    button evdev
log "modules: $(tr '\n' ' ' < "$G/etc/modules.order")"

# dropbear with a fixed host key: generated once, kept in the cache so that
# rebuilds keep the key tests have pinned
add_binary "$G" /usr/sbin/dropbear /sbin
HOSTKEY=$CACHE/$NAME-dropbear_ed25519_host_key
if [ ! -s "$HOSTKEY" ]; then
    dropbearkey -t ed25519 -f "$HOSTKEY.tmp" >/dev/null 2>&1
    mv "$HOSTKEY.tmp" "$HOSTKEY"
fi
mkdir -p "$G/etc/dropbear"
cp "$HOSTKEY" "$G/etc/dropbear/dropbear_ed25519_host_key"
chmod 600 "$G/etc/dropbear/dropbear_ed25519_host_key"
dropbearkey -y -f "$HOSTKEY" | awk -v c="root@$NAME" '/^ssh-/ {print $1, $2, c}' \
    > "$WORK/hostkey.pub"
[ -s "$WORK/hostkey.pub" ] || die "cannot read the public part of $HOSTKEY"

# a UDP echo service on port 5000 (busybox's nc has no UDP mode), so tests
# can check UDP port forwarding both ways
gcc -static -Os -o "$G/sbin/udp-echo" "$(dirname "$0")/udp-echo.c" \
    || die "cannot build udp-echo"

# root / password (fixed salt: same hash on every build)
echo 'root:x:0:0:root:/root:/bin/sh' > "$G/etc/passwd"
echo "root:$(openssl passwd -6 -salt kvmstackguest "$GUEST_PASSWORD"):19000:0:99999:7:::" \
    > "$G/etc/shadow"
chmod 600 "$G/etc/shadow"
printf 'export PATH=/bin:/sbin\nexport PS1='"'"'\\h:\\w\\$ '"'"'\n' > "$G/etc/profile"
echo "$NAME" > "$G/etc/hostname"
printf '127.0.0.1 localhost\n' > "$G/etc/hosts"
: > "$G/etc/resolv.conf"

# ACPI power button -> power off (busybox acpid maps the event to PWRF/00000080)
mkdir -p "$G/etc/acpi/PWRF"
printf '#!/bin/sh\necho "GUEST-POWEROFF (ACPI)" > /dev/console\nsync\npoweroff -f\n' \
    > "$G/etc/acpi/PWRF/00000080"
chmod 755 "$G/etc/acpi/PWRF/00000080"

mkdir -p "$G/usr/share/udhcpc"
install -m 755 "$here/udhcpc.script" "$G/usr/share/udhcpc/default.script"
install -m 755 "$here/guest-init" "$G/init"

pack_initrd "$G" "$WORK/initrd.gz"
make_bootdisk "$VMLINUZ" "$WORK/initrd.gz" "console=ttyS0,115200 quiet" TESTGUEST \
    "$WORK/$NAME.qcow2" "$WORK"
qemu-img check -q "$WORK/$NAME.qcow2.tmp"

# sidecars first, the qcow2 (make's target) last
cp "$VMLINUZ" "$OUT/$NAME.vmlinuz"
cp "$WORK/initrd.gz" "$OUT/$NAME.initrd.gz"
cp "$WORK/hostkey.pub" "$OUT/$NAME.hostkey.pub"
( cd "$WORK" && mv "$NAME.qcow2.tmp" "$NAME.qcow2" &&
  sha256sum "$NAME.qcow2" > "$NAME.qcow2.sha256" )
mv "$WORK/$NAME.qcow2.sha256" "$OUT/$NAME.qcow2.sha256"
mv "$WORK/$NAME.qcow2" "$OUT/$NAME.qcow2"
log "$OUT/$NAME.qcow2: $(stat -c %s "$OUT/$NAME.qcow2") bytes" \
    "(initrd $(stat -c %s "$OUT/$NAME.initrd.gz")) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
