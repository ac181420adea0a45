# mk/images.mk: the test images (included by the Makefile; see images/README.md)
#
#   make images          build/images/test-guest.qcow2 and
#                        build/images/kvmstack-vr.qcow2 (+ sidecars); cached:
#                        nothing is rebuilt unless images/*, this file or
#                        build/kvmstack-vr changed, and the kernel .deb is
#                        downloaded once into build/images/cache
#   make images-deps     apt-get install the Debian packages the build needs
#   make check-images    boot the images under qemu/libvirt (TCG) and check
#                        them: tests/images/selftest.py (root)
#   make images-clean    remove build/images except the download cache

IMAGES_DIR := $(BUILD)/images

# Debian packages the image build needs (apt-cache/apt-get/dpkg-deb/ldd/
# gzip/flock come with every Debian; the kernel is fetched with apt-get
# download, not installed).  nftables, dnsmasq-base: copied into the VR.
DEB_IMAGES := syslinux syslinux-common mtools dropbear-bin busybox-static \
              qemu-utils cpio openssl xz-utils nftables dnsmasq-base
IMAGES_DEPS_STAMP := $(IMAGES_DIR)/.deps-installed

IMAGES_COMMON := images/lib.sh mk/images.mk
GUEST_SRC := images/build-guest.sh images/guest-init images/udhcpc.script \
             images/udp-echo.c \
             $(IMAGES_COMMON)
# The VR daemon (hostagent/vr/, built by mk/vr.mk) goes into the VR image;
# the image is rebuilt when the binary changes.
VR_BIN    := $(BUILD)/kvmstack-vr
VR_SRC    := images/build-vr.sh images/vr-init $(IMAGES_COMMON) $(VR_BIN)

.PHONY: images images-deps images-clean check-images

images: $(IMAGES_DIR)/test-guest.qcow2 $(IMAGES_DIR)/kvmstack-vr.qcow2

# Installs only what is missing (so it needs root only the first time).
images-deps: $(IMAGES_DEPS_STAMP)
$(IMAGES_DEPS_STAMP): mk/images.mk
	@missing=$$(for p in $(DEB_IMAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make images-deps: run as root to install:" $$missing; exit 1; fi; \
	    echo "apt-get install" $$missing; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        $$missing || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        $$missing; } || exit 1; \
	fi
	@mkdir -p $(IMAGES_DIR) && touch $@

$(IMAGES_DIR)/test-guest.qcow2: $(GUEST_SRC) | $(IMAGES_DEPS_STAMP)
	images/build-guest.sh $(IMAGES_DIR)

$(IMAGES_DIR)/kvmstack-vr.qcow2: $(VR_SRC) | $(IMAGES_DEPS_STAMP)
	images/build-vr.sh $(IMAGES_DIR) $(VR_BIN)

check-images: images
	python3 tests/images/selftest.py --images $(IMAGES_DIR)

images-clean:
	rm -rf $(IMAGES_DIR)/test-guest.* $(IMAGES_DIR)/kvmstack-vr.* \
	       $(IMAGES_DIR)/.build-* $(IMAGES_DEPS_STAMP)
