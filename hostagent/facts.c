/* facts.c: what mgmt records about a host: CPUs, memory, architecture,
 * kernel, OS, and the libvirt and QEMU versions as libvirtd reports them. */
#include "dispatch.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.facts");

static json_t *
version_string(unsigned long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%lu.%lu.%lu", v / 1000000, (v / 1000) % 1000,
             v % 1000);
    return json_string(buf);
}

static void
silent_error(void *data, virErrorPtr err)
{
    (void) data;
    (void) err;
}

static json_t *
os_release(void)
{
    FILE *f = fopen("/etc/os-release", "r");
    char line[256];
    json_t *v = json_null();

    if (!f) {
        return v;
    }
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "PRETTY_NAME=", 12)) {
            char *s = line + 12;
            size_t n;

            s += *s == '"';
            n = strcspn(s, "\"\n");
            json_decref(v);
            v = json_stringn(s, n);
        }
    }
    fclose(f);
    return v;
}

static json_t *
facts_collect(json_t *params)
{
    struct utsname u;
    struct sysinfo si;

    (void) params;
    json_t *facts;
    json_t *warnings = json_array();
    virConnectPtr conn;
    char host[256] = "";

    uname(&u);
    sysinfo(&si);
    gethostname(host, sizeof host - 1);
    facts = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:b}",
                      "cpus", (json_int_t) sysconf(_SC_NPROCESSORS_ONLN),
                      "memoryBytes",
                      (json_int_t) si.totalram * (json_int_t) si.mem_unit,
                      "architecture", u.machine, "hostname", host,
                      "kernel", u.release, "osRelease", os_release(),
                      "kvm", access("/dev/kvm", R_OK | W_OK) == 0);
    virSetErrorFunc(NULL, silent_error);
    conn = virConnectOpen("qemu:///system");
    if (conn) {
        unsigned long lib = 0;
        unsigned long hv = 0;

        if (virConnectGetLibVersion(conn, &lib) == 0) {
            json_object_set_new(facts, "libvirtVersion",
                                version_string(lib));
        }
        if (virConnectGetVersion(conn, &hv) == 0 && hv) {
            json_object_set_new(facts, "qemuVersion", version_string(hv));
        }
        virConnectClose(conn);
    } else {
        virErrorPtr e = virGetLastError();

        json_array_append_new(warnings,
                              json_sprintf("libvirtd not reachable: %s",
                                           e && e->message ? e->message
                                                           : "unknown"));
    }
    if (!json_object_get(facts, "libvirtVersion")) {
        json_object_set_new(facts, "libvirtVersion", json_null());
    }
    if (!json_object_get(facts, "qemuVersion")) {
        json_object_set_new(facts, "qemuVersion", json_null());
    }
    json_object_set_new(facts, "warnings", warnings);
    return facts;
}

static const struct agent_method facts_methods[] = {
    { "host.facts", facts_collect },
    { 0 },
};

const struct agent_module facts_module = {
    .name = "facts",
    .methods = facts_methods,
};
