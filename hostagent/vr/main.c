/* main.c: kvmstack-vr, the daemon inside each virtual-router VM.
 *
 *   kvmstack-vr [--port PATH] [--run-dir DIR]    (default: the port
 *       /dev/virtio-ports/org.kvmstack.vr.0, how images/vr-init runs it)
 *   kvmstack-vr --stdio [--run-dir DIR]          (tests: stdin/stdout)
 *   kvmstack-vr --render-nft FILE                (prints the nft batch that
 *       a first vr.apply of configuration FILE ("-": stdin) would run; the
 *       NICs are named if0, if1... in configuration order)
 *   kvmstack-vr --version
 *
 * It speaks the agent protocol (include/kvmstack/proto.h, "Virtual
 * routers") with the host agent: it sends {"kind":"init","version":1,
 * "role":"vr"} first, then serves vr.apply (and ping -> pong).  Logs go to
 * stderr (the serial console in the appliance); KVMSTACK_VR_LOG=dbg|info|
 * warn|err sets the level; KVMSTACK_VR_CT_RCVBUF and KVMSTACK_VR_CT_MAX
 * tune the conntrack index (ct.h; debugging and tests).
 *
 * DESIGN: one thread.  A call runs to completion before the next frame is
 * read, so applies are serialised in arrival order and each reply carries
 * the gen it reached.  vr.apply parses and validates the whole
 * configuration first (nothing happens on invalid input), resolves the
 * NICs by MAC, then converges in this order: nftables (fw.c, ONE
 * transaction; a refused batch fails the call and changes nothing), then
 * addresses (addr.c), then dnsmasq (dhcp.c).  Each module remembers what
 * it committed, so an apply whose later step failed is finished by the
 * next apply of the same configuration.
 *
 * vr.apply {"delta":D} changes some rules of the configuration applied
 * last, which is kept (struct vr.cfg, with a uuid index), so that one
 * rule's change costs the same at any number of rules: no whole
 * configuration to parse or diff.  It applies only on the gen it names as
 * its base (else "gen gap", nothing done; mgmt then sends everything);
 * then fw_apply_rules() (ONE transaction of the rules' elements), the edit
 * of vr.cfg, and addr_apply() when the VIP set changed.  A failure after
 * nftables committed (addresses; dnsmasq in a whole apply) leaves no gen:
 * deltas are refused until a whole configuration is applied.
 *
 * The virtio-serial port can be open while no host side is connected:
 * the guest kernel then reports POLLIN|POLLHUP (POLLIN because a read
 * returns 0 at once) and writes fail with EAGAIN.  The loop treats POLLHUP
 * as "disconnected" (whatever else is set), looks again every 100 ms, and
 * counts the host side as connected when the port polls without POLLHUP
 * (it turns POLLOUT at once); it sends init on every (re)connection,
 * because the agent relays that as "vr.state Connected" and mgmt then
 * pushes the whole configuration.  A host side that closes and
 * reconnects at once can go unseen (no POLLHUP between two polls; seen
 * under QEMU 7.2 / Linux 6.1): the agent's probe ping, a second after a
 * connection without init, is answered like any ping and covers that.
 * A port that cannot be opened (not there yet) is retried every second.
 *
 * The loop also polls the conntrack event socket (ct.c), whose events
 * keep the index that a rule's conntrack flush looks up; they are read
 * as they come, and again by every flush before it looks. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "ct.h"
#include "dhcp.h"
#include "fw.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.main");

#define VR_DEFAULT_PORT "/dev/virtio-ports/org.kvmstack.vr.0"
#define VR_DEFAULT_RUN_DIR "/run/kvmstack-vr"

/* Frames from the agent may be larger than PROTO_MAX_FRAME: a full
 * configuration with tens of thousands of rules.  This is the VR's own
 * limit; proto_next() is only called on a buffer holding a whole line. */
#define VR_MAX_FRAME (256 * 1024 * 1024)

#define VR_WRITE_TIMEOUT_MS 30000

/* Poll timeout of both loops; the guest kernel wakes a poller of the port
 * when the host side connects (POLLOUT) or goes (POLLHUP), so this only
 * paces dhcp_tick() and the reading of conntrack events.  The event socket
 * is deliberately not polled: a wake-up of this daemon for every new
 * connection through the router cost connects 20 us at p99 (make
 * bench-vr: 45 -> 25 us).  Events wait in the socket's buffer (8 MiB,
 * tens of thousands of events) and are read every VR_POLL_MS and before
 * every flush; an overflow only makes the next flush dump the table. */
#define VR_POLL_MS 100

/* The daemon's state. */
struct vr {
    struct ct *ct;              /* Conntrack events and flushes. */
    struct fw *fw;              /* nftables. */
    struct addr *addr;          /* Addresses, routes. */
    struct dhcp *dhcp;          /* dnsmasq. */
    struct vr_iface *known;     /* NICs resolved last (MAC -> name). */
    size_t n_known;
    int64_t parse_usec;         /* Time proto_next() took on the frame
                                 * being handled (JSON parsing). */
    struct vr_config *cfg;      /* What the kernel has (nft rules and
                                 * VIPs): the last configuration applied,
                                 * edited by the deltas since; NULL
                                 * before the first apply. */
    bool has_gen;               /* Whether 'gen' is set: 'cfg' is wholly
                                 * applied and deltas may build on it. */
    int64_t gen;                /* Gen of the last successful apply. */
};

/* The channel to the agent. */
struct vr_chan {
    int in_fd;                  /* Read side (-1: closed). */
    int out_fd;                 /* Write side. */
    bool is_port;               /* A virtio-serial port, not stdio. */
    const char *path;           /* The port's path. */
    bool connected;             /* The host side is there. */
    struct sbuf in;             /* Bytes read, not yet a whole frame. */
    size_t scanned;             /* in.s[0..scanned) holds no newline. */
};

static volatile sig_atomic_t vr_stop;

static void
vr_on_signal(int sig)
{
    (void) sig;
    vr_stop = 1;
}

static int64_t
vr_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Writes all of 's'; on a non-blocking port waits for room (POLLOUT) up to
 * VR_WRITE_TIMEOUT_MS and gives up when the host side goes (POLLHUP). */
static int
vr_write_all(struct vr_chan *ch, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(ch->out_fd, s, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = { ch->out_fd, POLLOUT, 0 };

            if (poll(&p, 1, VR_WRITE_TIMEOUT_MS) <= 0
                || (p.revents & (POLLHUP | POLLERR))) {
                return -1;
            }
            continue;
        }
        if (w < 0) {
            return -1;
        }
        s += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Sends 'msg' (taking it) as one frame. */
static int
vr_send(struct vr_chan *ch, json_t *msg)
{
    char *frame = proto_encode(msg);
    int rc = vr_write_all(ch, frame, strlen(frame));

    if (rc < 0) {
        LOG_INFO("cannot send a frame (%s): the host side is gone",
                 strerror(errno));
    } else {
        LOG_DBG("-> %.500s", frame);
    }
    free(frame);
    json_decref(msg);
    return rc;
}

static void
vr_reply_problem(struct vr_chan *ch, json_t *id)
{
    const char *field = error_last_field();
    json_t *msg = json_pack("{s:s, s:O, s:s, s:s}", "kind", "reply", "id",
                            id, "problem",
                            problem_name(error_last_problem()), "message",
                            error_last_message());

    if (field) {
        json_object_set_new(msg, "field", json_string(field));
    }
    vr_send(ch, msg);
}

/* Fills the NIC names of 'cfg' from the last resolution when every MAC is
 * known, else asks the kernel.  Returns 0 or -1 with an error. */
static int
vr_resolve(struct vr *vr, struct vr_config *cfg)
{
    size_t found = 0;

    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        for (size_t j = 0; j < vr->n_known; j++) {
            if (!strcmp(cfg->ifaces[i].mac, vr->known[j].mac)) {
                memcpy(cfg->ifaces[i].ifname, vr->known[j].ifname,
                       sizeof cfg->ifaces[i].ifname);
                cfg->ifaces[i].ifindex = vr->known[j].ifindex;
                found++;
                break;
            }
        }
    }
    if (found == cfg->n_ifaces) {
        return 0;
    }
    if (addr_resolve(vr->addr, cfg) < 0) {
        return -1;
    }
    free(vr->known);
    vr->known = xcalloc(cfg->n_ifaces + 1, sizeof *vr->known);
    memcpy(vr->known, cfg->ifaces, cfg->n_ifaces * sizeof *vr->known);
    vr->n_known = cfg->n_ifaces;
    return 0;
}

/* The stats of a reply. */
static json_t *
vr_stats(const struct fw_stats *st, bool delta, size_t n_rules,
         bool addr_changed, bool dhcp_changed, int64_t apply_usec,
         int64_t parse_usec)
{
    return json_pack("{s:I, s:b, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:I, "
                     "s:I, s:b, s:I}",
                     "nftOps", (json_int_t) st->ops,
                     "nftFull", st->full,
                     "nftUsec", (json_int_t) st->nft_usec,
                     "batchBytes", (json_int_t) st->batch_bytes,
                     "conntrackFlushed", (json_int_t) st->ct_flushed,
                     "conntrackUsec", (json_int_t) st->ct_usec,
                     "conntrackDump", st->ct_dump,
                     "addressesChanged", addr_changed,
                     "dnsmasqChanged", dhcp_changed,
                     "applyUsec", (json_int_t) apply_usec,
                     "parseUsec", (json_int_t) parse_usec,
                     "delta", delta,
                     "rules", (json_int_t) n_rules);
}

/* Makes 'cfg' the configuration the kernel has; 'applied': wholly (its
 * gen reached), else only its nftables part (a later step failed: no
 * delta may build on it until a whole configuration is applied). */
static void
vr_commit(struct vr *vr, struct vr_config *cfg, bool applied)
{
    vr_config_free(vr->cfg);
    vr->cfg = cfg;
    vr->has_gen = applied;
    vr->gen = applied ? cfg->gen : 0;
}

/* vr.apply {"delta":D}: applies the change D to the committed
 * configuration when that is D's base.  Returns the result object, or
 * NULL with an error reported. */
static json_t *
vr_apply_delta(struct vr *vr, json_t *json)
{
    int64_t t0 = vr_usec();
    struct vr_delta *d = vr_delta_parse(json);
    struct vr_config *cfg = vr->cfg;
    const struct vr_pf_rule **old = NULL;
    size_t n_old = 0;
    struct fw_stats st;
    bool vips_changed = false;
    bool addr_changed = false;
    json_t *result = NULL;

    if (!d) {
        return NULL;
    }
    if (!cfg || !vr->has_gen || vr->gen != d->base_gen) {
        char have[32];

        if (cfg && vr->has_gen) {
            snprintf(have, sizeof have, "%lld", (long long) vr->gen);
        } else {
            snprintf(have, sizeof have, "none");
        }
        error_report_field(PROBLEM_CONFLICT, "baseGen", "gen gap: have %s, "
                           "delta is based on %lld", have,
                           (long long) d->base_gen);
        goto out;
    }
    if (d->n_vips_add && !vr_config_public(cfg)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vipsAdd",
                           "VIPs need an interface with role \"public\"");
        goto out;
    }

    /* The committed rules that go: removed, or replaced by an add.  A
     * json object dedups uuids listed in both. */
    old = xcalloc(d->n_del + d->n_add + 1, sizeof *old);
    {
        json_t *seen = json_object();

        for (size_t i = 0; i < d->n_del + d->n_add; i++) {
            const char *uuid = i < d->n_del ? d->del[i]
                                            : d->add[i - d->n_del].uuid;
            const struct vr_pf_rule *r = vr_config_rule(cfg, uuid);

            if (r && !json_object_get(seen, uuid)) {
                json_object_set_new(seen, uuid, json_true());
                old[n_old++] = r;
            }
        }
        json_decref(seen);
    }
    if (fw_apply_rules(vr->fw, old, n_old, d->add, d->n_add, &st) < 0) {
        goto fail;
    }

    /* Committed: the in-memory configuration follows. */
    for (size_t i = 0; i < d->n_del; i++) {
        vr_config_remove_rule(cfg, d->del[i]);
    }
    for (size_t i = 0; i < d->n_add; i++) {
        vr_config_remove_rule(cfg, d->add[i].uuid);
        vr_config_append_rule(cfg, &d->add[i]);
    }
    for (size_t i = 0; i < d->n_vips_del; i++) {
        vips_changed |= vr_config_del_vip(cfg, d->vips_del[i]);
    }
    for (size_t i = 0; i < d->n_vips_add; i++) {
        vips_changed |= vr_config_add_vip(cfg, d->vips_add[i]);
    }
    cfg->gen = d->gen;
    vr->has_gen = false;
    if (vips_changed && addr_apply(vr->addr, cfg, &addr_changed) < 0) {
        goto fail;
    }
    vr->has_gen = true;
    vr->gen = d->gen;
    result = json_pack("{s:I, s:o}", "gen", (json_int_t) d->gen, "stats",
                       vr_stats(&st, true, cfg->n_rules, addr_changed, false,
                                vr_usec() - t0, vr->parse_usec));
    LOG_INFO("gen %lld (delta on %lld) applied: -%zu +%zu rules (%zu in "
             "all), %zu nft elements changed in %.3f ms, %.3f ms in all",
             (long long) d->gen, (long long) d->base_gen, d->n_del,
             d->n_add, cfg->n_rules, st.ops, st.nft_usec / 1000.0,
             (vr_usec() - t0) / 1000.0);
    goto out;

fail:
    error_prefix("gen %lld (delta on %lld): ", (long long) d->gen,
                 (long long) d->base_gen);
out:
    free(old);
    vr_delta_free(d);
    return result;
}

/* vr.apply: converges to configuration 'c', or applies the delta of
 * {"delta":D}.  Returns the result object, or NULL with an error
 * reported. */
static json_t *
vr_apply(struct vr *vr, json_t *c)
{
    int64_t t0 = vr_usec();
    struct vr_config *cfg;
    struct fw_stats st;
    bool addr_changed = false;
    bool dhcp_changed = false;
    json_t *result;

    if (json_object_get(c, "delta")) {
        return vr_apply_delta(vr, json_object_get(c, "delta"));
    }
    if (json_is_object(json_object_get(c, "config"))) {
        c = json_object_get(c, "config");       /* The agent's envelope. */
    }
    cfg = vr_config_parse(c);
    if (!cfg) {
        return NULL;
    }
    if (vr_resolve(vr, cfg) < 0 || fw_apply(vr->fw, cfg, &st) < 0) {
        /* Nothing changed. */
        error_prefix("gen %lld: ", (long long) cfg->gen);
        vr_config_free(cfg);
        return NULL;
    }
    if (addr_apply(vr->addr, cfg, &addr_changed) < 0
        || dhcp_apply(vr->dhcp, cfg, &dhcp_changed) < 0) {
        error_prefix("gen %lld: ", (long long) cfg->gen);
        vr_commit(vr, cfg, false);
        return NULL;
    }
    result = json_pack("{s:I, s:o}", "gen", (json_int_t) cfg->gen, "stats",
                       vr_stats(&st, false, cfg->n_rules, addr_changed,
                                dhcp_changed, vr_usec() - t0,
                                vr->parse_usec));
    LOG_INFO("gen %lld applied: %zu rules, %zu nft elements changed in "
             "%.3f ms, %.3f ms in all", (long long) cfg->gen, cfg->n_rules,
             st.ops, st.nft_usec / 1000.0, (vr_usec() - t0) / 1000.0);
    vr_commit(vr, cfg, true);
    return result;
}

/* Handles one frame. */
static void
vr_frame(struct vr *vr, struct vr_chan *ch, json_t *msg)
{
    const char *kind = proto_kind(msg);
    json_t *id = json_object_get(msg, "id");
    const char *method = json_string_value(json_object_get(msg, "method"));

    if (!strcmp(kind, "ping")) {
        vr_send(ch, json_pack("{s:s, s:O}", "kind", "pong", "id",
                              id ? id : json_null()));
        return;
    }
    if (!strcmp(kind, "init")) {
        LOG_INFO("the agent says init (version %lld)", (long long)
                 json_integer_value(json_object_get(msg, "version")));
        return;
    }
    if (strcmp(kind, "call")) {
        LOG_DBG("ignoring a '%s' frame", kind);
        return;
    }
    if (!id || !method) {
        error_report(PROBLEM_PROTOCOL_ERROR, "a call needs an id and a "
                     "method");
        vr_reply_problem(ch, id ? id : json_null());
        return;
    }
    if (!strcmp(method, "vr.apply")) {
        json_t *result;

        error_reset();
        result = vr_apply(vr, json_object_get(msg, "params"));
        if (!result) {
            LOG_ERR("vr.apply: %s", error_last_message());
            vr_reply_problem(ch, id);
            return;
        }
        vr_send(ch, json_pack("{s:s, s:O, s:o}", "kind", "reply", "id", id,
                              "result", result));
        return;
    }
    if (!strcmp(method, "vr.status")) {
        vr_send(ch, json_pack("{s:s, s:O, s:{s:o}}", "kind", "reply", "id",
                              id, "result", "gen",
                              vr->has_gen ? json_integer(vr->gen)
                                          : json_null()));
        return;
    }
    error_report(PROBLEM_NOT_SUPPORTED, "unknown method '%s'", method);
    vr_reply_problem(ch, id);
}

/* Handles every whole frame in the input buffer.  Returns -1 on a
 * protocol error (the buffer is then dropped). */
static int
vr_drain(struct vr *vr, struct vr_chan *ch)
{
    /* Only the bytes that came since the last look are searched: a
     * multi-megabyte frame arrives in pipe-sized pieces. */
    while (memchr(ch->in.s + ch->scanned, '\n', ch->in.len - ch->scanned)) {
        int64_t t0 = vr_usec();
        json_t *msg;

        ch->scanned = 0;
        if (proto_next(&ch->in, &msg) < 0) {
            LOG_WARN("%s", error_last_message());
            continue;
        }
        vr->parse_usec = vr_usec() - t0;
        LOG_DBG("<- %s", proto_kind(msg));
        vr_frame(vr, ch, msg);
        json_decref(msg);
    }
    ch->scanned = ch->in.len;
    if (ch->in.len > VR_MAX_FRAME) {
        LOG_ERR("frame longer than %d bytes; dropped", VR_MAX_FRAME);
        ch->in.len = 0;
        ch->in.s[0] = '\0';
        ch->scanned = 0;
        return -1;
    }
    return 0;
}

static void
vr_send_init(struct vr_chan *ch)
{
    vr_send(ch, json_pack("{s:s, s:i, s:s, s:[s, s], s:s}", "kind", "init",
                          "version", PROTO_VERSION, "role", "vr",
                          "capabilities", "vr.apply", "vr.apply.delta",
                          "agentVersion",
                          KVMSTACK_VERSION));
}

/* Reads what is there.  Returns 1 when bytes came, 0 when none (EAGAIN),
 * -1 on EOF or error. */
static int
vr_read(struct vr_chan *ch)
{
    static char buf[1 << 20];
    ssize_t n = read(ch->in_fd, buf, sizeof buf);

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return 0;
    }
    if (n <= 0) {
        return -1;
    }
    sbuf_add(&ch->in, buf, (size_t) n);
    return 1;
}

static void
vr_disconnected(struct vr_chan *ch)
{
    if (ch->connected) {
        LOG_INFO("host side of %s disconnected", ch->path);
    }
    ch->connected = false;
    ch->in.len = 0;
    ch->in.s[0] = '\0';
    ch->scanned = 0;
}

/* Serves the virtio-serial port at 'ch->path' until a signal stops us. */
static int
vr_run_port(struct vr *vr, struct vr_chan *ch)
{
    while (!vr_stop) {
        struct pollfd p;
        int n;

        ct_process(vr->ct);
        if (ch->in_fd < 0) {
            int fd = open(ch->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

            if (fd < 0) {
                LOG_WARN_RL("cannot open %s: %s; retrying", ch->path,
                            strerror(errno));
                dhcp_tick(vr->dhcp);
                sleep(1);
                continue;
            }
            LOG_INFO("opened %s", ch->path);
            ch->in_fd = ch->out_fd = fd;
            ch->connected = false;
        }
        /* While disconnected, POLLOUT too: the port turns writable the
         * moment the host side connects (no data needs to come first). */
        p.fd = ch->in_fd;
        p.events = ch->connected ? POLLIN : POLLIN | POLLOUT;
        p.revents = 0;
        n = poll(&p, 1, VR_POLL_MS);
        ct_process(vr->ct);
        dhcp_tick(vr->dhcp);
        if (n < 0) {
            continue;
        }
        if (n > 0) {
            LOG_DBG("%s: poll revents %#x", ch->path, (unsigned) p.revents);
        }
        if (p.revents & (POLLERR | POLLNVAL)) {
            LOG_WARN("%s failed; reopening", ch->path);
            close(ch->in_fd);
            ch->in_fd = ch->out_fd = -1;
            vr_disconnected(ch);
            sleep(1);
            continue;
        }
        /* No host side: POLLHUP, with POLLIN too (a read would return 0).
         * Bytes still buffered belong to the connection that went. */
        if (p.revents & POLLHUP) {
            vr_disconnected(ch);
            usleep(100000);
            continue;
        }
        if (!ch->connected) {
            LOG_INFO("host side of %s connected; sending init", ch->path);
            ch->connected = true;
            ch->in.len = 0;
            ch->in.s[0] = '\0';
            ch->scanned = 0;
            vr_send_init(ch);
        }
        if (p.revents & POLLIN) {
            int r = vr_read(ch);

            if (r < 0) {
                vr_disconnected(ch);
                usleep(100000);
                continue;
            }
            if (r > 0) {
                vr_drain(vr, ch);
            }
        }
    }
    return 0;
}

/* Serves stdin/stdout until EOF or a signal. */
static int
vr_run_stdio(struct vr *vr, struct vr_chan *ch)
{
    vr_send_init(ch);
    while (!vr_stop) {
        struct pollfd p = { ch->in_fd, POLLIN, 0 };
        int n = poll(&p, 1, VR_POLL_MS);

        dhcp_tick(vr->dhcp);
        ct_process(vr->ct);
        if (n <= 0 || !p.revents) {
            continue;
        }
        if (vr_read(ch) < 0) {
            LOG_INFO("channel closed; exiting");
            break;
        }
        if (vr_drain(vr, ch) < 0) {
            return 1;
        }
    }
    return 0;
}

/* --render-nft: prints the full batch for the configuration in 'path'. */
static int
vr_render(const char *path)
{
    json_error_t jerr;
    json_t *json = !strcmp(path, "-")
                   ? json_loadf(stdin, 0, &jerr)
                   : json_load_file(path, 0, &jerr);
    struct vr_config *cfg;
    char *text;

    if (!json) {
        fprintf(stderr, "kvmstack-vr: %s: %s (line %d)\n", path, jerr.text,
                jerr.line);
        return 1;
    }
    cfg = vr_config_parse(json);
    json_decref(json);
    if (!cfg) {
        fprintf(stderr, "kvmstack-vr: %s: %s\n", path, error_last_message());
        return 1;
    }
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        snprintf(cfg->ifaces[i].ifname, sizeof cfg->ifaces[i].ifname,
                 "if%u", (unsigned) (i % 1000));
    }
    text = fw_render_full(FW_TABLE, cfg);
    vr_config_free(cfg);
    if (!text) {
        fprintf(stderr, "kvmstack-vr: %s: %s\n", path, error_last_message());
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return 0;
}

static void
vr_usage(FILE *f)
{
    fprintf(f, "usage: kvmstack-vr [--port PATH | --stdio] [--run-dir DIR]"
            "\n       kvmstack-vr --render-nft FILE"
            "\n       kvmstack-vr --version\n");
}

int
main(int argc, char **argv)
{
    const char *port = VR_DEFAULT_PORT;
    const char *run_dir = VR_DEFAULT_RUN_DIR;
    const char *lvl = getenv("KVMSTACK_VR_LOG");
    bool stdio = false;
    struct vr vr;
    struct vr_chan ch;
    struct sigaction sa;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("kvmstack-vr %s (protocol %d)\n", KVMSTACK_VERSION,
                   PROTO_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--render-nft") && i + 1 < argc) {
            return vr_render(argv[i + 1]);
        } else if (!strcmp(argv[i], "--stdio")) {
            stdio = true;
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = argv[++i];
        } else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
            run_dir = argv[++i];
        } else if (!strcmp(argv[i], "--help")) {
            vr_usage(stdout);
            return 0;
        } else {
            vr_usage(stderr);
            return 2;
        }
    }
    if (lvl && log_level_from_name(lvl) >= 0) {
        log_set_level((enum log_level) log_level_from_name(lvl));
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vr_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (mkdir(run_dir, 0755) < 0 && errno != EEXIST) {
        LOG_ERR("cannot create '%s': %s", run_dir, strerror(errno));
        return 1;
    }

    memset(&vr, 0, sizeof vr);
    vr.ct = ct_new();
    vr.fw = fw_new(FW_TABLE, vr.ct);
    vr.addr = addr_new();
    if (!vr.fw || !vr.addr) {
        LOG_ERR("%s", error_last_message());
        return 1;
    }
    vr.dhcp = dhcp_new(run_dir, getenv("KVMSTACK_VR_DNSMASQ"));

    memset(&ch, 0, sizeof ch);
    sbuf_init(&ch.in);
    if (stdio) {
        ch.in_fd = STDIN_FILENO;
        ch.out_fd = STDOUT_FILENO;
        ch.path = "stdio";
        ch.connected = true;
        rc = vr_run_stdio(&vr, &ch);
    } else {
        ch.in_fd = ch.out_fd = -1;
        ch.is_port = true;
        ch.path = port;
        /* On a line of its own: the console shell's prompt may be there. */
        printf("\nVR-READY kvmstack-vr %s port=%s\n", KVMSTACK_VERSION,
               port);
        fflush(stdout);
        rc = vr_run_port(&vr, &ch);
    }

    LOG_INFO("exiting");
    dhcp_free(vr.dhcp);
    addr_free(vr.addr);
    fw_free(vr.fw);
    ct_free(vr.ct);
    vr_config_free(vr.cfg);
    free(vr.known);
    sbuf_destroy(&ch.in);
    return rc;
}
