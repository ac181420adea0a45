/* config.h: the virtual router's desired configuration, the C of
 * vr.apply (include/kvmstack/proto.h, "Virtual routers"), parsed and
 * validated. */
#ifndef KVMSTACK_VR_CONFIG_H
#define KVMSTACK_VR_CONFIG_H 1

#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which side of the router a NIC is on. */
#define VR_ROLES                    \
    VR_ROLE(PUBLIC, "public")       \
    VR_ROLE(PRIVATE, "private")

enum vr_role {
#define VR_ROLE(ENUM, NAME) VR_ROLE_##ENUM,
    VR_ROLES
#undef VR_ROLE
    VR_ROLE_N
};

/* Port-forwarding protocols; the values are IPPROTO numbers' stand-ins
 * used in keys, never 0 (0 marks an empty hash slot in fw.c). */
#define VR_PROTOS                   \
    VR_PROTO(TCP, "tcp")            \
    VR_PROTO(UDP, "udp")

enum vr_proto {
    VR_PROTO_NONE,
#define VR_PROTO(ENUM, NAME) VR_PROTO_##ENUM,
    VR_PROTOS
#undef VR_PROTO
    VR_PROTO_N
};

const char *vr_proto_name(enum vr_proto p);
const char *vr_role_name(enum vr_role r);

/* An IPv4 network: address with the host bits cleared, and prefix. */
struct vr_cidr {
    struct in_addr net;         /* Network address (host bits zero). */
    uint8_t len;                /* Prefix length, 0-32. */
};

/* One NIC of the router, found by its MAC. */
struct vr_iface {
    char mac[18];               /* "52:54:00:aa:bb:cc", lower case. */
    enum vr_role role;          /* VR_ROLE_PUBLIC or VR_ROLE_PRIVATE. */
    struct in_addr addr;        /* The router's address on this NIC. */
    uint8_t prefix;             /* Its prefix length. */
    bool has_gateway;           /* Whether 'gateway' is set. */
    struct in_addr gateway;     /* Next hop (public NIC: default route). */
    char ifname[IF_NAMESIZE];   /* Resolved by addr_resolve(); "" before. */
    int ifindex;                /* Resolved by addr_resolve(); 0 before. */
};

/* Source NAT of a private network to a public address. */
struct vr_snat {
    struct vr_cidr source;      /* Private sources. */
    struct in_addr to;          /* Public address they leave with. */
};

/* A static DHCP lease. */
struct vr_dhcp_host {
    char mac[18];               /* Client MAC, lower case. */
    struct in_addr ip;          /* Its address. */
    char *hostname;             /* Hostname option and DNS name, or NULL. */
};

/* DHCP and DNS service on the private side (dnsmasq). */
struct vr_dhcp {
    struct vr_cidr subnet;      /* Leases are given in this network. */
    struct in_addr gateway;     /* Router option. */
    char *domain;               /* Domain option and local domain, or NULL. */
    struct in_addr *dns;        /* DNS servers offered to clients. */
    size_t n_dns;
    struct in_addr *upstreams;  /* Where dnsmasq forwards other names. */
    size_t n_upstreams;
    struct vr_dhcp_host *hosts; /* Static leases. */
    size_t n_hosts;
};

/* A port-forwarding rule: VIP ports 'vip_port[0]'..'vip_port[1]' to the
 * same number of guest ports from 'guest_port[0]'. */
struct vr_pf_rule {
    char *uuid;                 /* Rule uuid (logs only), or NULL. */
    struct in_addr vip;         /* Public address. */
    enum vr_proto proto;        /* VR_PROTO_TCP or VR_PROTO_UDP. */
    uint16_t vip_port[2];       /* First and last VIP port. */
    struct in_addr guest_ip;    /* Target address on the private side. */
    uint16_t guest_port[2];     /* First and last guest port. */
    bool has_cidr;              /* Whether 'allowed' restricts sources. */
    struct vr_cidr allowed;     /* Sources admitted when 'has_cidr'. */
};

/* The whole desired configuration of the router.  kvmstack-vr keeps the
 * one it committed last and edits it with deltas (vr_config_*_rule,
 * vr_config_*_vip below). */
struct vr_config {
    int64_t gen;                /* Generation, echoed in the reply. */
    struct vr_iface *ifaces;
    size_t n_ifaces;
    struct in_addr *vips;       /* Extra /32s on the public NIC. */
    size_t n_vips;
    struct vr_snat *snat;
    size_t n_snat;
    struct vr_dhcp *dhcp;       /* NULL: no DHCP/DNS service. */
    struct vr_pf_rule *rules;   /* In no particular order (a delta's
                                 * removal moves the last rule into the
                                 * hole). */
    size_t n_rules;
    size_t cap_rules;           /* Slots allocated in 'rules'. */
    json_t *rule_index;         /* Rule uuid -> its index in 'rules' (an
                                 * integer); rules without a uuid are not
                                 * in it.  Uuids are unique. */
};

/* The delta form of vr.apply (proto.h): a change of some port-forwarding
 * rules and VIP addresses, on top of configuration 'base_gen'. */
struct vr_delta {
    int64_t gen;                /* Generation reached. */
    int64_t base_gen;           /* Generation it applies to. */
    struct vr_pf_rule *add;     /* Rules added, or replacing the rule with
                                 * their uuid (which is always set). */
    size_t n_add;
    char **del;                 /* Uuids of rules removed. */
    size_t n_del;
    struct in_addr *vips_add;   /* VIP /32s added (if not there yet). */
    size_t n_vips_add;
    struct in_addr *vips_del;   /* VIP /32s removed (if there). */
    size_t n_vips_del;
};

/* Parses and validates 'json' (C of vr.apply).  Returns a new config that
 * the caller frees with vr_config_free(), or NULL with invalid-argument
 * reported (naming the field).  Addresses are checked with inet_pton, so
 * nothing that reaches nft is ever a host name to resolve. */
struct vr_config *vr_config_parse(json_t *json);

void vr_config_free(struct vr_config *cfg);

/* Parses and validates 'json' (the D of vr.apply {"delta":D}): every rule
 * of portForwardingAdd has a uuid, none twice.  Returns a new delta that
 * the caller frees with vr_delta_free(), or NULL with invalid-argument
 * reported (naming the field). */
struct vr_delta *vr_delta_parse(json_t *json);

void vr_delta_free(struct vr_delta *d);

/* The rule of 'cfg' with uuid 'uuid', or NULL. */
struct vr_pf_rule *vr_config_rule(const struct vr_config *cfg,
                                  const char *uuid);

/* Removes the rule with uuid 'uuid' from 'cfg' when there (the last rule
 * takes its slot).  Returns whether it was there. */
bool vr_config_remove_rule(struct vr_config *cfg, const char *uuid);

/* Appends '*r' to 'cfg', taking its uuid (r->uuid is NULL after), which
 * must be set and not yet in 'cfg'. */
void vr_config_append_rule(struct vr_config *cfg, struct vr_pf_rule *r);

/* Adds VIP 'a' to 'cfg' / removes it; returns whether 'cfg' changed. */
bool vr_config_add_vip(struct vr_config *cfg, struct in_addr a);
bool vr_config_del_vip(struct vr_config *cfg, struct in_addr a);

/* The public NIC (the first one with that role), or NULL. */
const struct vr_iface *vr_config_public(const struct vr_config *cfg);

/* Formats 'cidr' as "A/LEN" into 'buf' (at least 19 bytes); returns it. */
char *vr_cidr_format(const struct vr_cidr *cidr, char *buf);

#endif
