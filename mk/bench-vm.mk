# mk/bench-vm.mk: the VM-create benchmark of `make bench` (issue 4):
# CreateVmInstance to Running against qemu-img create -b + virsh define +
# virsh start on the same test-bed host; see tests/bench/vm-bench.sh.
# Included by the Makefile.
#
#   make bench-vm               tests/bench/vm-bench.sh alone (root)

# Scripts that `make bench` runs after tests/bench/run.
BENCH_EXTRA += tests/bench/vm-bench.sh

.PHONY: bench-vm
bench-vm: all
	tests/bench/vm-bench.sh
