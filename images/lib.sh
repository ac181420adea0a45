# images/lib.sh: shared steps of images/build-guest.sh and images/build-vr.sh
# (sourced, bash).  Builds initramfs trees from Debian packages and turns a
# kernel + initramfs into a bootable FAT+SYSLINUX qcow2 without loop mounts
# (recipes: ../shared/TESTBED.md sections 4 and 6).
#
# Environment:
#   KVMSTACK_IMAGE_KERNEL  kernel package to use (default: what Debian's
#                          linux-image-cloud-amd64 meta package depends on,
#                          i.e. the newest 6.1 cloud kernel apt knows).

set -euo pipefail
export LC_ALL=C
export MTOOLS_SKIP_CHECK=1

log() { echo "images: $*" >&2; }
die() { echo "images: error: $*" >&2; exit 1; }
need() {
    local c
    for c; do
        command -v "$c" >/dev/null 2>&1 || \
            die "'$c' not found: run 'make images-deps' (as root)"
    done
}

# kernel_fetch CACHE: pick the cloud kernel package, `apt-get download` its
# .deb into CACHE unless a .deb of that package is there already, unpack it
# once.  Sets KPKG (package), KDIR (unpacked tree), KVER, VMLINUZ, KDEB.
# Concurrent builds (make -j) serialise on CACHE/.lock.
kernel_fetch() {
    local cache=$1 pkg deb
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9
    pkg=${KVMSTACK_IMAGE_KERNEL:-}
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -1)
    fi
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache pkgnames linux-image- 2>/dev/null |
              grep -E '^linux-image-[0-9][^ ]*-cloud-amd64$' | sort -V | tail -1 || true)
    fi
    if [ -z "$pkg" ]; then
        # apt knows none (no package lists): reuse the newest cached one
        deb=$(ls "$cache"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$deb" ] || die "apt knows no linux-image-*-cloud-amd64 (run apt-get update)"
        pkg=$(basename "$deb"); pkg=${pkg%%_*}
    fi
    deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$deb" ]; then
        log "downloading $pkg into $cache"
        ( cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" ) >&2 ||
            die "apt-get download $pkg failed"
        deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $cache"
    fi
    KDIR=$cache/$pkg.d
    if [ ! -e "$KDIR/.unpacked" ] || [ "$(cat "$KDIR/.unpacked")" != "$deb" ]; then
        log "unpacking $(basename "$deb")"
        rm -rf "$KDIR"
        dpkg-deb -x "$deb" "$KDIR"
        echo "$deb" > "$KDIR/.unpacked"
    fi
    # other kernels of earlier builds are not needed any more
    local old
    for old in "$cache"/linux-image-*; do
        case $old in "$deb"|"$KDIR") ;; *) rm -rf "$old" ;; esac
    done
    flock -u 9
    exec 9>&-
    KPKG=$pkg
    KDEB=$deb
    KVER=$(ls "$KDIR/lib/modules" | head -1)
    VMLINUZ=$KDIR/boot/vmlinuz-$KVER
    [ -f "$VMLINUZ" ] || die "no $VMLINUZ in $deb"
}

# initrd_skeleton G: an empty initramfs tree with static busybox and its
# applet links in /bin (so /bin is enough for every PATH), /sbin for the
# dynamically linked daemons, and the /usr paths linked back.
initrd_skeleton() {
    local G=$1 a
    rm -rf "$G"
    mkdir -p "$G"/{bin,sbin,etc,lib/modules,proc,sys,dev,run,tmp,var/log,root,usr/share}
    ln -s ../bin "$G/usr/bin"
    ln -s ../sbin "$G/usr/sbin"
    ln -s ../run "$G/var/run"
    chmod 1777 "$G/tmp"
    chmod 700 "$G/root"
    cp /bin/busybox "$G/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$G/bin/$a"
    done
    ln -s ../bin/busybox "$G/sbin/modprobe"   # the kernel's request_module helper
    : > "$G/etc/modules.order"
    printf '/bin/sh\n/bin/ash\n' > "$G/etc/shells"
    printf 'root:x:0:\n' > "$G/etc/group"
}

# add_binary G PATH [DEST]: copy a dynamically linked program into G/sbin
# (or DEST inside G) with the shared libraries ldd names, at their paths.
add_binary() {
    local G=$1 bin=$2 dest=${3:-/sbin} l
    [ -x "$bin" ] || die "$bin is missing (make images-deps)"
    mkdir -p "$G$dest"
    cp -L "$bin" "$G$dest/"
    for l in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true); do   # none if static
        [ -e "$G$l" ] && continue
        mkdir -p "$G$(dirname "$l")"
        cp -L "$l" "$G$l"
    done
}

# add_modules G MOD...: copy the kernel modules MOD (module names) and what
# they depend on (the depends= field of each .ko) from KDIR into G/lib/modules
# as NAME.ko (decompressed), appending them to G/etc/modules.order in load
# order (dependencies first).  Modules built into the kernel are skipped; a
# module this kernel does not have at all is reported and skipped.
add_modules() {
    local G=$1; shift
    local moddir=$KDIR/lib/modules/$KVER
    _MOD_INDEX=$(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')
    local m
    for m; do _add_module "$G" "$m" "$moddir"; done
}

_module_file() {   # NAME -> path of its .ko[.xz|.zst] ('' if none)
    local n=${1//-/_} f b
    while read -r f; do
        b=${f##*/}; b=${b%.xz}; b=${b%.zst}; b=${b%.ko}
        [ "${b//-/_}" = "$n" ] && { echo "$f"; return; }
    done <<< "$_MOD_INDEX"
}

_add_module() {
    local G=$1 m=${2//-/_} moddir=$3 f deps d out
    grep -qx "$m" "$G/etc/modules.order" && return 0
    f=$(_module_file "$m")
    if [ -z "$f" ]; then
        if grep -Eq "/${m//_/[-_]}\.ko" "$moddir/modules.builtin"; then
            return 0
        fi
        log "warning: kernel $KVER has no module $m (skipped)"
        return 0
    fi
    out=$G/lib/modules/$m.ko
    case $f in
        *.xz)  xz -dc "$f" > "$out" ;;
        *.zst) zstd -qdc "$f" > "$out" ;;
        *)     cp "$f" "$out" ;;
    esac
    deps=$(tr '\0' '\n' < "$out" | sed -n 's/^depends=//p' | head -1)
    for d in ${deps//,/ }; do
        _add_module "$G" "$d" "$moddir"
    done
    echo "$m" >> "$G/etc/modules.order"
}

# pack_initrd G OUT: newc cpio, owned by root, gzip.
pack_initrd() {
    local G=$1 out=$2
    ( cd "$G" && find . | sort | cpio -o -H newc -R 0:0 --quiet ) | gzip -9n > "$out.tmp"
    mv "$out.tmp" "$out"
}

# make_bootdisk VMLINUZ INITRD CMDLINE LABEL OUT.qcow2 WORKDIR: a FAT
# "superfloppy" with SYSLINUX (no partition table, no loop mount), kernel
# and initramfs, converted to a compressed qcow2.
make_bootdisk() {
    local vmlinuz=$1 initrd=$2 cmdline=$3 label=$4 out=$5 work=$6 mb img
    mb=$(( ( $(stat -c %s "$vmlinuz") + $(stat -c %s "$initrd") ) / 1048576 + 8 ))
    [ "$mb" -ge 48 ] || mb=48
    img=$work/boot.img
    rm -f "$img"
    truncate -s "${mb}M" "$img"
    mformat -i "$img" -v "$label" -T $(( mb * 2048 )) -h 64 -s 32 ::
    syslinux --install "$img"
    printf 'SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND %s\n' \
        "$cmdline" > "$work/syslinux.cfg"
    mcopy -i "$img" "$vmlinuz" ::vmlinuz
    mcopy -i "$img" "$initrd" ::initrd.gz
    mcopy -i "$img" "$work/syslinux.cfg" ::syslinux.cfg
    rm -f "$out.tmp"
    qemu-img convert -q -c -O qcow2 "$img" "$out.tmp"
    rm -f "$img"
}
