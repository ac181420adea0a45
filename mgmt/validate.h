/* validate.h: pure checks of API input, shared by every resource and unit
 * tested table-driven (tests/unit/test-validate.c).  Each check returns 0
 * when the value is acceptable and -1 with an invalid-argument error that
 * names 'field' and the reason otherwise.  None touches the database. */
#ifndef MGMT_VALIDATE_H
#define MGMT_VALIDATE_H 1

#include <stdbool.h>
#include <stdint.h>

#define NAME_MAX_LEN 255
#define DESCRIPTION_MAX_LEN 2048

int validate_name(const char *field, const char *s);
int validate_description(const char *field, const char *s);
int validate_uuid(const char *field, const char *s);

/* Strict dotted-quad IPv4 ("10.0.0.1"; no leading zeros, no shorthand).
 * Stores the address in host byte order. */
bool ipv4_parse(const char *s, uint32_t *addr);
void ipv4_format(uint32_t addr, char out[16]);
int validate_ipv4(const char *field, const char *s, uint32_t *addr);

/* A contiguous netmask; stores the prefix length. */
int validate_netmask(const char *field, const char *s, int *prefix);
uint32_t ipv4_prefix_mask(int prefix);

/* "a.b.c.d/n" with no host bits set; stores network and prefix. */
int validate_cidr(const char *field, const char *s, uint32_t *net,
                  int *prefix);

/* An IP range of an L3 network: start <= end, valid netmask, gateway inside
 * the subnet and outside the range, neither end the network or broadcast
 * address, start and end in one subnet.  'fields' names the four request
 * fields in order start, end, netmask, gateway. */
int validate_ip_range(const char *start, const char *end,
                      const char *netmask, const char *gateway,
                      uint32_t *start_out, uint32_t *end_out, int *prefix);

int validate_port(const char *field, int64_t port);

/* Port-forwarding ports: fills defaults (vip end = vip start; private
 * range = vip range; private end = private start + vip length) and checks
 * 1..65535, start <= end and equal lengths.  A value of -1 means "not
 * given". */
int validate_pf_ports(int64_t *vip_start, int64_t *vip_end,
                      int64_t *priv_start, int64_t *priv_end);

/* True if [a1,a2] and [b1,b2] share a port. */
bool ranges_overlap(int64_t a1, int64_t a2, int64_t b1, int64_t b2);

int validate_vlan(const char *field, int64_t vlan);
int validate_vni(const char *field, int64_t vni);

/* "host:/abs/path" as the mount command takes it. */
int validate_nfs_url(const char *field, const char *url);
/* An absolute local path outside /dev, /proc and /sys. */
int validate_storage_path(const char *field, const char *path);
/* A Linux interface name usable in bridge names. */
int validate_ifname(const char *field, const char *s);
/* RFC 1123 host name (labels of letters, digits and '-'). */
int validate_hostname(const char *field, const char *s);
/* A DNS domain such as "tutorials.zstack.org". */
int validate_domain(const char *field, const char *s);
/* An IPv4 address or a DNS host name. */
int validate_host_address(const char *field, const char *s);

#endif
