# mk/vr.mk: kvmstack-vr, the daemon inside each virtual-router VM
# (hostagent/vr/), its test tier (tests/vr/, run by tests/run) and its
# benchmark (tests/bench/vr-bench.sh, run by `make bench`).  Included by the
# Makefile.
#
#   make build/kvmstack-vr      the daemon (also part of `make all`)
#   make check-vr               tests/vr (root: network namespaces)
#   make bench-vr               tests/bench/vr-bench.sh alone (root)

# Debian packages to build it: libnftables (nft transactions),
# libnetfilter-conntrack (conntrack flush), libnl-route (addresses; the
# agent's DEB_BUILD has it too).
DEB_VR := libnftables-dev libnetfilter-conntrack-dev libnl-3-dev \
          libnl-route-3-dev
# ... and to test and benchmark it: nft, dnsmasq, busybox (udhcpc in
# tests/vr), iptables (iptables-legacy in the benchmark), qemu (the
# appliance boot test), iproute2.
DEB_VR_TEST := nftables dnsmasq-base busybox-static iptables iproute2 \
               qemu-system-x86 qemu-utils
DEB_BUILD += $(filter-out $(DEB_BUILD),$(DEB_VR))
DEB_TEST += $(filter-out $(DEB_TEST),$(DEB_VR_TEST))

VR_PKGS := libnftables libnetfilter_conntrack libnl-3.0 libnl-route-3.0 \
           jansson libcrypto
VR_DIR_SRC := $(wildcard hostagent/vr/*.c)
VR_OBJ := $(VR_DIR_SRC:%.c=$(BUILD)/%.o)

ALL_EXTRA += $(BUILD)/kvmstack-vr

$(VR_OBJ): $(wildcard hostagent/vr/*.h)

$(BUILD)/kvmstack-vr: $(VR_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $$(pkg-config --libs $(VR_PKGS)) -lpthread

# The benchmark's TCP connect-latency helper (tests/bench/vr_connect.c).
$(BUILD)/vr-connect: tests/bench/vr_connect.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

BENCH_EXTRA += tests/bench/vr-bench.sh

.PHONY: check-vr bench-vr
check-vr: $(BUILD)/kvmstack-vr
	tests/run --tier vr

bench-vr: $(BUILD)/kvmstack-vr $(BUILD)/vr-connect
	tests/bench/vr-bench.sh
$(DEPS_STAMP): mk/vr.mk
