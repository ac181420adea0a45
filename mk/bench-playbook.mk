# mk/bench-playbook.mk: the playbook benchmark of `make bench` (issue 3):
# the same task list, tests/bench/playbook.yaml, run against one test-bed
# host by kvmstack's runner and by ansible-playbook; see
# tests/bench/playbook-bench.sh.  Included by the Makefile.
#
#   make build/playbook-bench   the kvmstack side: a driver linked with
#                               mgmt's objects (tests/bench/playbook_bench.c)

# Scripts that `make bench` runs after tests/bench/run.
BENCH_EXTRA += tests/bench/playbook-bench.sh

$(BUILD)/playbook-bench: $(BUILD)/tests/bench/playbook_bench.o $(MGMT_OBJ) \
                         $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
