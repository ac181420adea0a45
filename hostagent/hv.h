/* hv.h: the agent's hypervisor module (hv.c): what vm.start asks for, and
 * the libvirt domain XML made from it.  The parser and the XML builder need
 * no libvirtd, so they can be tested on their own. */
#ifndef HOSTAGENT_HV_H
#define HOSTAGENT_HV_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kvmstack/util.h"

/* Where the virtual-router channel sockets live (one per VM). */
#define HV_VR_DIR "/var/lib/kvmstack/vr"

/* The virtio-serial port name of the virtual-router channel. */
#define HV_VR_PORT "org.kvmstack.vr.0"

/* One NIC of a VM. */
struct hv_nic {
    char mac[18];               /* "52:54:00:0a:0b:0c", lower case. */
    char bridge[16];            /* Host bridge, 1-15 characters. */
    long long device_id;        /* Position among the VM's NICs. */
};

/* A VM as vm.start describes it (include/kvmstack/proto.h). */
struct hv_vm_spec {
    char uuid[UUID_LEN + 1];    /* Lower-case hex; the domain name too. */
    char *name;                 /* Display name (<title>) or NULL. */
    char *domain_type;          /* "kvm" or "qemu". */
    long long cpu_num;          /* vCPUs, 1-512. */
    unsigned long long memory_kib;  /* memorySize rounded up to KiB. */
    char *root_volume;          /* Absolute path of the qcow2 root disk. */
    char *console_log;          /* Absolute path of the serial log. */
    char *vr_socket;            /* VR channel socket path, or NULL. */
    struct hv_nic *nics;        /* Sorted by device_id. */
    size_t n_nics;
};

/* Reads 'params' into 'spec', which the caller then always releases with
 * hv_vm_spec_destroy().  Returns 0, or -1 with invalid-argument reported
 * (naming the field at fault). */
int hv_vm_spec_parse(json_t *params, struct hv_vm_spec *spec);

/* Frees what 'spec' holds (not 'spec' itself); accepts a zeroed spec. */
void hv_vm_spec_destroy(struct hv_vm_spec *spec);

/* Builds the domain XML of 'spec' run by 'emulator' on 'arch' (e.g.
 * "x86_64") with libxml2; every value goes in as a text node or an
 * attribute, escaped by libxml2.  Returns the document; caller frees. */
char *hv_domain_xml(const struct hv_vm_spec *spec, const char *emulator,
                    const char *arch);

/* Reads a 32-hex-digit "uuid" member of 'params' into 'out', lower-cased.
 * Returns 0, or -1 with invalid-argument reported. */
int hv_parse_uuid(json_t *params, char out[UUID_LEN + 1]);

#endif
