/* vr.c: the agent's relay to the virtual routers of its host (proto.h,
 * "Virtual routers"): methods vr.apply and vr.status, event vr.state.
 * kvmstack-vr runs inside each VR domain and speaks the agent framing over
 * the virtio-serial port that hv.c gives a domain started with vrChannel;
 * QEMU listens on the host end, HV_VR_DIR/U.sock.
 *
 * DESIGN: one relay thread owns every socket.  Every VR_SCAN_MS it lists
 * HV_VR_DIR and connects (unix stream, non-blocking) to each U.sock it is
 * not connected to; between scans it poll()s the connections and a wake
 * pipe.  It reads frames (proto_next) and handles them: init from
 * kvmstack-vr makes the channel ready and emits vr.state Connected; a
 * second init on the same connection means the VR rebooted, so its state
 * is void: Disconnected, then Connected; EOF (QEMU stopped, the domain was
 * destroyed) emits Disconnected when the channel was ready, and the relay
 * connects again whenever the socket file is there.  Pings are answered;
 * replies are matched by id to waiting callers; replies whose id is not
 * outstanding are dropped.  QEMU accepts one client at a time and a guest
 * that has not opened its port yet does not read, so nothing is sent
 * before the channel is ready, except one probe: a connection that has
 * not seen init VR_PROBE_MS after connecting gets one ping, and a pong
 * makes it ready too.  That covers an agent started while kvmstack-vr
 * already runs (mgmt reconnected: kvmstack-vr said its init to the agent
 * before); while the VR still boots the ping waits in the socket and its
 * late pong, after init, is ignored.
 *
 * Callers (vr.apply, vr.status; dispatch.c runs them on their own
 * threads) share the channel table with the relay thread under 'vr_mutex'.
 * vr.apply queues its call frame on the channel's output buffer, wakes the
 * relay, and waits on 'vr_cond' for the relay to hand it the reply, or a
 * failure when the channel closes or the VR re-inits meanwhile.  Events are
 * emitted by the relay after it drops 'vr_mutex', so a slow stdout never
 * holds up callers.
 *
 * vr.state Disconnected is only emitted for a channel that was Connected
 * (a VR that never said init, then stopped, emits nothing).  Errors of
 * vr.apply: not-found when there is no U.sock (only lower-case names, as
 * hv.c makes them, are channels); host-unreachable while the relay cannot
 * connect, before init, or when the VR restarts or its channel closes
 * while the call waits (at once, not at the timeout); the VR's own problem
 * and message otherwise.  vr.apply takes an optional "timeoutMs" (1-30000,
 * default 30000), the longest wait for the VR's reply (tests use a short
 * one).  dispatch.c serves the calls of a module one at a time, so a
 * vr.apply waiting on a silent VR holds up every other vr.* call for that
 * long. */
#include "dispatch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.vr");

#define VR_SCAN_MS 200              /* Period of the socket directory scan. */
#define VR_PROBE_MS 1000            /* Connected without init: ping once. */
#define VR_APPLY_TIMEOUT_MS 30000   /* vr.apply default and most timeoutMs. */
#define VR_OUT_MAX (2 * PROTO_MAX_FRAME)  /* Unsent bytes: VR not reading. */
#define VR_READ_SIZE 65536
#define VR_SOCK_SUFFIX ".sock"

/* The channel to one VR domain: a connection to QEMU's end of its
 * virtio-serial port.  Created, connected, closed and freed by the relay
 * thread only; callers read it and queue output under 'vr_mutex'. */
struct vr_chan {
    char uuid[UUID_LEN + 1];    /* Lower case; the socket is U.sock. */
    char *path;                 /* HV_VR_DIR "/U.sock". */
    int fd;                     /* Connected socket, or -1. */
    bool present;               /* Socket file seen by the last scan. */
    bool ready;                 /* kvmstack-vr said init on 'fd'. */
    int64_t connected_at;       /* time_msec() of the connect. */
    long long probe_id;         /* Id of the probe ping sent, or 0. */
    json_t *gen;                /* Last gen the VR applied, or NULL. */
    char *refusal;              /* Why its init was refused, or NULL. */
    int connect_errno;          /* Last connect() failure, 0 if none. */
    struct sbuf in;             /* Bytes read, not yet a whole frame. */
    struct sbuf out;            /* Frames queued for the VR. */
    bool out_midframe;          /* 'out' starts inside a partly sent frame. */
    struct vr_chan *next;
};

/* A vr.apply waiting for its reply; lives on the caller's stack. */
struct vr_waiter {
    const char *uuid;           /* The VR asked. */
    long long id;               /* Id of the call frame. */
    bool done;                  /* Set by the relay; then 'reply' or... */
    json_t *reply;              /* ...the reply frame (owned), or NULL... */
    enum problem problem;       /* ...and why there is none. */
    char *message;              /* Owned; with 'problem'. */
    struct vr_waiter *next;
};

/* A vr.state event to emit once 'vr_mutex' is released. */
struct vr_event {
    char uuid[UUID_LEN + 1];
    bool connected;             /* Connected, else Disconnected. */
};

struct vr_events {
    struct vr_event *v;
    size_t n;
    size_t cap;
};

static pthread_mutex_t vr_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t vr_cond;      /* CLOCK_MONOTONIC; a waiter is done. */
static struct vr_chan *vr_chans;    /* Every channel, one per U.sock. */
static struct vr_waiter *vr_waiters;
static long long vr_next_id = 1;    /* Ids of call and probe frames. */
static int vr_wake_fds[2] = { -1, -1 };  /* Callers wake the relay. */

/* ------------------------------------------------------------- helpers */

static void
vr_events_add(struct vr_events *evs, const char *uuid, bool connected)
{
    if (evs->n == evs->cap) {
        evs->cap = evs->cap ? 2 * evs->cap : 8;
        evs->v = xrealloc(evs->v, evs->cap * sizeof *evs->v);
    }
    memcpy(evs->v[evs->n].uuid, uuid, UUID_LEN + 1);
    evs->v[evs->n].connected = connected;
    evs->n++;
}

/* Emits the collected events, in order, and empties 'evs'.  Called without
 * 'vr_mutex'. */
static void
vr_events_flush(struct vr_events *evs)
{
    for (size_t i = 0; i < evs->n; i++) {
        agent_emit_event("vr.state",
                         json_pack("{s:s, s:s}", "uuid", evs->v[i].uuid,
                                   "state", evs->v[i].connected
                                   ? "Connected" : "Disconnected"));
    }
    evs->n = 0;
}

static void
vr_wake(void)
{
    char c = 1;

    if (write(vr_wake_fds[1], &c, 1) < 0 && errno != EAGAIN) {
        LOG_WARN_RL("cannot wake the relay thread: %s", strerror(errno));
    }
}

/* The channel of 'uuid', or NULL.  Under 'vr_mutex'. */
static struct vr_chan *
vr_chan_find(const char *uuid)
{
    for (struct vr_chan *c = vr_chans; c; c = c->next) {
        if (!strcmp(c->uuid, uuid)) {
            return c;
        }
    }
    return NULL;
}

/* Queues the encoded 'frame' (borrowed) for the VR of 'chan'.  Under
 * 'vr_mutex'; the relay writes it. */
static void
vr_queue_frame(struct vr_chan *chan, const char *frame)
{
    LOG_DBG("vr '%s' <- %s", chan->uuid, frame);
    sbuf_addstr(&chan->out, frame);
}

/* Queues 'msg' (taken) for the VR of 'chan'.  Under 'vr_mutex'. */
static void
vr_queue(struct vr_chan *chan, json_t *msg)
{
    char *frame = proto_encode(msg);

    vr_queue_frame(chan, frame);
    free(frame);
    json_decref(msg);
}

/* Ends every call waiting on the VR 'uuid' with 'problem' and 'message'.
 * Under 'vr_mutex'. */
static void
vr_fail_waiters(const char *uuid, enum problem problem, const char *message)
{
    bool any = false;

    for (struct vr_waiter *w = vr_waiters; w; w = w->next) {
        if (!w->done && !strcmp(w->uuid, uuid)) {
            w->done = true;
            w->problem = problem;
            w->message = xstrdup(message);
            any = true;
        }
    }
    if (any) {
        pthread_cond_broadcast(&vr_cond);
    }
}

/* Forgets what the VR of 'chan' said on this connection (its init, gen,
 * pending calls) after a reboot or a close; emits Disconnected when it was
 * Connected.  'why' completes "the virtual router 'U' ...".  Under
 * 'vr_mutex'. */
static void
vr_chan_reset(struct vr_chan *chan, struct vr_events *evs, const char *why)
{
    char *msg = xasprintf("the virtual router '%s' %s before it answered",
                          chan->uuid, why);

    vr_fail_waiters(chan->uuid, PROBLEM_HOST_UNREACHABLE, msg);
    free(msg);
    if (chan->ready) {
        vr_events_add(evs, chan->uuid, false);
    }
    chan->ready = false;
    chan->probe_id = 0;
    json_decref(chan->gen);
    chan->gen = NULL;
    free(chan->refusal);
    chan->refusal = NULL;
}

/* Closes the connection of 'chan'; 'why' completes "the virtual router
 * 'U' ..." ("closed its channel"). */
static void
vr_chan_close(struct vr_chan *chan, struct vr_events *evs, const char *why)
{
    if (chan->fd < 0) {
        return;
    }
    LOG_INFO("vr '%s': the virtual router %s", chan->uuid, why);
    vr_chan_reset(chan, evs, why);
    close(chan->fd);
    chan->fd = -1;
    chan->in.len = 0;
    chan->in.s[0] = '\0';
    chan->out.len = 0;
    chan->out.s[0] = '\0';
    chan->out_midframe = false;
}

static struct vr_chan *
vr_chan_new(const char *uuid)
{
    struct vr_chan *chan = xcalloc(1, sizeof *chan);

    memcpy(chan->uuid, uuid, UUID_LEN + 1);
    chan->path = xasprintf("%s/%s%s", HV_VR_DIR, uuid, VR_SOCK_SUFFIX);
    chan->fd = -1;
    sbuf_init(&chan->in);
    sbuf_init(&chan->out);
    return chan;
}

static void
vr_chan_free(struct vr_chan *chan)
{
    if (!chan) {
        return;
    }
    if (chan->fd >= 0) {
        close(chan->fd);
    }
    free(chan->path);
    json_decref(chan->gen);
    free(chan->refusal);
    sbuf_destroy(&chan->in);
    sbuf_destroy(&chan->out);
    free(chan);
}

/* Connects 'chan' to QEMU's socket.  A failure is logged once per errno
 * (a stale socket refuses on every scan) and retried at the next scan. */
static void
vr_chan_connect(struct vr_chan *chan, int64_t now)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(chan->path) >= sizeof sa.sun_path) {
        return;
    }
    strcpy(sa.sun_path, chan->path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        LOG_WARN_RL("vr '%s': cannot create a socket: %s", chan->uuid,
                    strerror(errno));
        return;
    }
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        int err = errno;

        if (err != chan->connect_errno) {
            LOG_WARN("vr '%s': cannot connect to '%s': %s (retrying)",
                     chan->uuid, chan->path, strerror(err));
        }
        chan->connect_errno = err;
        close(fd);
        return;
    }
    chan->fd = fd;
    chan->connect_errno = 0;
    chan->connected_at = now;
    LOG_INFO("vr '%s': channel connected; waiting for kvmstack-vr's init",
             chan->uuid);
}

/* True if 'name' is "U.sock" with U 32 lower-case hex digits, as hv.c
 * names them; copies U into 'uuid'. */
static bool
vr_sock_name(const char *name, char uuid[UUID_LEN + 1])
{
    if (strlen(name) != UUID_LEN + strlen(VR_SOCK_SUFFIX)
        || strcmp(name + UUID_LEN, VR_SOCK_SUFFIX)) {
        return false;
    }
    memcpy(uuid, name, UUID_LEN);
    uuid[UUID_LEN] = '\0';
    for (size_t i = 0; i < UUID_LEN; i++) {
        if (!isdigit((unsigned char) uuid[i])
            && (uuid[i] < 'a' || uuid[i] > 'f')) {
            return false;
        }
    }
    return true;
}

/* Lists HV_VR_DIR: adds a channel for each new U.sock, connects the
 * unconnected ones whose file is there, frees closed ones whose file is
 * gone.  Under 'vr_mutex'. */
static void
vr_scan(int64_t now)
{
    DIR *dir = opendir(HV_VR_DIR);
    struct vr_chan **pp;
    struct dirent *de;
    char uuid[UUID_LEN + 1];

    for (struct vr_chan *c = vr_chans; c; c = c->next) {
        c->present = false;
    }
    if (!dir && errno != ENOENT) {
        LOG_WARN_RL("cannot list '%s': %s", HV_VR_DIR, strerror(errno));
    }
    while (dir && (de = readdir(dir))) {
        struct vr_chan *chan;

        if (!vr_sock_name(de->d_name, uuid)) {
            continue;
        }
        chan = vr_chan_find(uuid);
        if (!chan) {
            chan = vr_chan_new(uuid);
            chan->next = vr_chans;
            vr_chans = chan;
        }
        chan->present = true;
    }
    if (dir) {
        closedir(dir);
    }
    pp = &vr_chans;
    while (*pp) {
        struct vr_chan *chan = *pp;

        if (chan->fd < 0 && chan->present) {
            vr_chan_connect(chan, now);
        }
        if (chan->fd < 0 && !chan->present) {
            *pp = chan->next;
            vr_chan_free(chan);
            continue;
        }
        pp = &chan->next;
    }
}

/* ------------------------------------------------------------- frames */

/* kvmstack-vr said init: the VR (re)started. */
static void
vr_on_init(struct vr_chan *chan, json_t *msg, struct vr_events *evs)
{
    json_int_t version = json_integer_value(json_object_get(msg, "version"));
    const char *role = json_string_value(json_object_get(msg, "role"));

    if (chan->ready) {
        LOG_INFO("vr '%s': kvmstack-vr said init again (the VR restarted); "
                 "its earlier state is void", chan->uuid);
        vr_chan_reset(chan, evs, "restarted");
        /* Whole frames still queued were meant for the old instance. */
        if (!chan->out_midframe) {
            chan->out.len = 0;
        } else {
            char *nl = memchr(chan->out.s, '\n', chan->out.len);

            chan->out.len = nl ? (size_t) (nl - chan->out.s) + 1 : 0;
        }
        chan->out.s[chan->out.len] = '\0';
    }
    free(chan->refusal);
    chan->refusal = NULL;
    if (version != PROTO_VERSION || !role || strcmp(role, "vr")) {
        chan->refusal = xasprintf("the virtual router '%s' said init with "
                                  "version %lld and role '%s'; this agent "
                                  "speaks version %d to role 'vr'",
                                  chan->uuid, (long long) version,
                                  role ? role : "", PROTO_VERSION);
        LOG_ERR("vr '%s': %s", chan->uuid, chan->refusal);
        return;
    }
    chan->ready = true;
    chan->probe_id = 0;
    vr_events_add(evs, chan->uuid, true);
    LOG_INFO("vr '%s': kvmstack-vr connected", chan->uuid);
}

/* A reply from the VR: handed to its waiter, or dropped. */
static void
vr_on_reply(struct vr_chan *chan, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    json_t *gen;

    for (struct vr_waiter *w = vr_waiters; w; w = w->next) {
        if (!w->done && json_is_integer(id)
            && json_integer_value(id) == w->id && !strcmp(w->uuid,
                                                          chan->uuid)) {
            gen = json_object_get(json_object_get(msg, "result"), "gen");
            if (gen) {
                json_decref(chan->gen);
                chan->gen = json_incref(gen);
            }
            w->done = true;
            w->reply = json_incref(msg);
            pthread_cond_broadcast(&vr_cond);
            return;
        }
    }
    LOG_DBG("vr '%s': dropping a reply whose id is not outstanding",
            chan->uuid);
}

/* Handles one frame from the VR of 'chan'.  Under 'vr_mutex'. */
static void
vr_on_frame(struct vr_chan *chan, json_t *msg, struct vr_events *evs)
{
    const char *kind = proto_kind(msg);
    json_t *id = json_object_get(msg, "id");

    if (!strcmp(kind, "init")) {
        vr_on_init(chan, msg, evs);
    } else if (!strcmp(kind, "reply")) {
        vr_on_reply(chan, msg);
    } else if (!strcmp(kind, "ping")) {
        vr_queue(chan, json_pack("{s:s, s:O*}", "kind", "pong", "id", id));
    } else if (!strcmp(kind, "pong")) {
        if (!chan->ready && !chan->refusal && chan->probe_id
            && json_integer_value(id) == chan->probe_id) {
            chan->ready = true;
            chan->probe_id = 0;
            vr_events_add(evs, chan->uuid, true);
            LOG_INFO("vr '%s': kvmstack-vr answered the probe (it was "
                     "already running)", chan->uuid);
        }
    } else if (!strcmp(kind, "call")) {
        vr_queue(chan, json_pack("{s:s, s:O*, s:s, s:s}", "kind", "reply",
                                 "id", id, "problem", "not-supported",
                                 "message", "unknown method"));
    } else {
        LOG_DBG("vr '%s': ignoring a frame of kind '%s'", chan->uuid, kind);
    }
}

/* Reads what the VR sent and handles every whole frame; closes the channel
 * on EOF or error. */
static void
vr_chan_read(struct vr_chan *chan, struct vr_events *evs)
{
    char buf[VR_READ_SIZE];
    ssize_t n = read(chan->fd, buf, sizeof buf);
    json_t *msg;
    int r;

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        char *why = xasprintf("closed its channel (%s)", strerror(errno));

        vr_chan_close(chan, evs, why);
        free(why);
        return;
    }
    if (n == 0) {
        vr_chan_close(chan, evs, "closed its channel");
        return;
    }
    sbuf_add(&chan->in, buf, (size_t) n);
    while ((r = proto_next(&chan->in, &msg)) != 0) {
        if (r < 0) {
            /* A line that is not a frame (noise while the guest boots)
             * is skipped; a line too long is thrown away whole. */
            LOG_WARN_RL("vr '%s': %s (skipped)", chan->uuid,
                        error_last_message());
            if (chan->in.len > PROTO_MAX_FRAME) {
                chan->in.len = 0;
                chan->in.s[0] = '\0';
            }
            continue;
        }
        LOG_DBG("vr '%s' -> %s", chan->uuid, proto_kind(msg));
        vr_on_frame(chan, msg, evs);
        json_decref(msg);
    }
}

/* Writes what is queued for the VR of 'chan', as much as it takes now. */
static void
vr_chan_write(struct vr_chan *chan, struct vr_events *evs)
{
    ssize_t n = write(chan->fd, chan->out.s, chan->out.len);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        char *why = xasprintf("closed its channel (%s)", strerror(errno));

        vr_chan_close(chan, evs, why);
        free(why);
        return;
    }
    chan->out_midframe = n > 0 && chan->out.s[n - 1] != '\n';
    memmove(chan->out.s, chan->out.s + n, chan->out.len - (size_t) n);
    chan->out.len -= (size_t) n;
    chan->out.s[chan->out.len] = '\0';
    if (!chan->out.len) {
        chan->out_midframe = false;
    }
}

/* --------------------------------------------------------------- relay */

static void *
vr_relay_main(void *arg)
{
    struct vr_events evs = { NULL, 0, 0 };
    struct pollfd *fds = NULL;
    struct vr_chan **chans = NULL;
    size_t cap = 0;
    int64_t last_scan = 0;

    (void) arg;
    for (;;) {
        int64_t now = time_msec();
        size_t n = 1;
        size_t i;
        char drain[64];

        pthread_mutex_lock(&vr_mutex);
        if (now - last_scan >= VR_SCAN_MS) {
            vr_scan(now);
            last_scan = now;
        }
        for (struct vr_chan *c = vr_chans; c; c = c->next) {
            if (c->fd >= 0 && !c->ready && !c->refusal && !c->probe_id
                && now - c->connected_at >= VR_PROBE_MS) {
                c->probe_id = vr_next_id++;
                vr_queue(c, json_pack("{s:s, s:I}", "kind", "ping", "id",
                                      (json_int_t) c->probe_id));
            }
            n += c->fd >= 0;
        }
        if (n > cap) {
            cap = 2 * n;
            fds = xrealloc(fds, cap * sizeof *fds);
            chans = xrealloc(chans, cap * sizeof *chans);
        }
        fds[0].fd = vr_wake_fds[0];
        fds[0].events = POLLIN;
        i = 1;
        for (struct vr_chan *c = vr_chans; c; c = c->next) {
            if (c->fd >= 0) {
                fds[i].fd = c->fd;
                fds[i].events = POLLIN | (c->out.len ? POLLOUT : 0);
                chans[i++] = c;
            }
        }
        pthread_mutex_unlock(&vr_mutex);

        if (poll(fds, n, VR_SCAN_MS) < 0 && errno != EINTR) {
            LOG_WARN_RL("poll: %s", strerror(errno));
        }

        /* Only this thread frees or closes channels, so 'chans' is still
         * valid; one closed by this loop has fd -1. */
        pthread_mutex_lock(&vr_mutex);
        if (fds[0].revents) {
            while (read(vr_wake_fds[0], drain, sizeof drain) > 0) {
                continue;
            }
        }
        for (i = 1; i < n; i++) {
            struct vr_chan *c = chans[i];

            if (c->fd != fds[i].fd || !fds[i].revents) {
                continue;
            }
            if (fds[i].revents & POLLOUT) {
                vr_chan_write(c, &evs);
            }
            if (c->fd >= 0
                && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                vr_chan_read(c, &evs);
            }
        }
        /* Pongs and anything queued while reading go out at once. */
        for (struct vr_chan *c = vr_chans; c; c = c->next) {
            if (c->fd >= 0 && c->out.len) {
                vr_chan_write(c, &evs);
            }
        }
        pthread_mutex_unlock(&vr_mutex);
        vr_events_flush(&evs);
    }
    return NULL;
}

/* Starts the relay thread. */
static int
vr_init(void)
{
    pthread_condattr_t attr;
    pthread_t relay;
    int err;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&vr_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pipe2(vr_wake_fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot create a pipe: %s",
                     strerror(errno));
        return -1;
    }
    err = pthread_create(&relay, NULL, vr_relay_main, NULL);
    if (err) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot start the VR relay thread: %s", strerror(err));
        return -1;
    }
    pthread_detach(relay);
    return 0;
}

/* ------------------------------------------------------------- methods */

/* Checks that the VR 'uuid' can take a call now.  Returns its channel, or
 * NULL with not-found, host-unreachable or not-supported reported.  Under
 * 'vr_mutex'. */
static struct vr_chan *
vr_chan_usable(const char *uuid)
{
    struct vr_chan *chan = vr_chan_find(uuid);
    char *path;
    bool exists;

    if (!chan) {
        /* The relay has not scanned since the socket appeared. */
        path = xasprintf("%s/%s%s", HV_VR_DIR, uuid, VR_SOCK_SUFFIX);
        exists = access(path, F_OK) == 0;
        free(path);
        if (exists) {
            error_report(PROBLEM_HOST_UNREACHABLE, "the virtual router '%s' "
                         "has not connected yet (booting?)", uuid);
        } else {
            error_report(PROBLEM_NOT_FOUND, "the virtual router '%s' has no "
                         "channel on this host (no '%s/%s%s')", uuid,
                         HV_VR_DIR, uuid, VR_SOCK_SUFFIX);
        }
        return NULL;
    }
    if (chan->fd < 0) {
        if (!chan->present) {
            error_report(PROBLEM_NOT_FOUND, "the virtual router '%s' has no "
                         "channel on this host (no '%s')", uuid, chan->path);
        } else if (chan->connect_errno) {
            error_report(PROBLEM_HOST_UNREACHABLE, "cannot connect to the "
                         "channel of the virtual router '%s' ('%s'): %s",
                         uuid, chan->path, strerror(chan->connect_errno));
        } else {
            error_report(PROBLEM_HOST_UNREACHABLE, "the virtual router '%s' "
                         "has not connected yet (booting?)", uuid);
        }
        return NULL;
    }
    if (chan->refusal) {
        error_report(PROBLEM_NOT_SUPPORTED, "%s", chan->refusal);
        return NULL;
    }
    if (!chan->ready) {
        error_report(PROBLEM_HOST_UNREACHABLE, "the virtual router '%s' has "
                     "not connected yet (booting?)", uuid);
        return NULL;
    }
    if (chan->out.len > VR_OUT_MAX) {
        error_report(PROBLEM_HOST_UNREACHABLE, "the virtual router '%s' is "
                     "not reading its channel (%zu bytes unsent)", uuid,
                     chan->out.len);
        return NULL;
    }
    return chan;
}

/* Reads the optional "timeoutMs" of 'params' into '*ms'. */
static int
vr_param_timeout(json_t *params, long long *ms)
{
    json_t *v = json_object_get(params, "timeoutMs");

    *ms = VR_APPLY_TIMEOUT_MS;
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > VR_APPLY_TIMEOUT_MS) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "timeoutMs",
                           "'timeoutMs' must be an integer from 1 to %d",
                           VR_APPLY_TIMEOUT_MS);
        return -1;
    }
    *ms = json_integer_value(v);
    return 0;
}

/* Sends 'method' with 'params' (borrowed) to the VR 'uuid' and waits up to
 * 'timeout_ms' for its reply.  Returns the reply's result (caller owns), or
 * NULL with the VR's problem, or ours, reported. */
static json_t *
vr_call(const char *uuid, const char *method, json_t *params,
        long long timeout_ms)
{
    struct vr_waiter w;
    struct vr_waiter **pp;
    struct vr_chan *chan;
    struct timespec deadline;
    json_t *msg;
    json_t *result = NULL;
    char *frame;
    size_t len;

    memset(&w, 0, sizeof w);
    w.uuid = uuid;
    pthread_mutex_lock(&vr_mutex);
    chan = vr_chan_usable(uuid);
    if (!chan) {
        pthread_mutex_unlock(&vr_mutex);
        return NULL;
    }
    w.id = vr_next_id++;
    msg = json_pack("{s:s, s:I, s:s, s:O}", "kind", "call", "id",
                    (json_int_t) w.id, "method", method, "params", params);
    frame = proto_encode(msg);
    json_decref(msg);
    len = strlen(frame);
    if (len > PROTO_MAX_FRAME) {
        pthread_mutex_unlock(&vr_mutex);
        free(frame);
        error_report(PROBLEM_TOO_LARGE, "the %s call to the virtual router "
                     "'%s' would be %zu bytes, over the frame limit of %d",
                     method, uuid, len, PROTO_MAX_FRAME);
        return NULL;
    }
    vr_queue_frame(chan, frame);
    free(frame);
    w.next = vr_waiters;
    vr_waiters = &w;
    vr_wake();

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    while (!w.done && pthread_cond_timedwait(&vr_cond, &vr_mutex,
                                             &deadline) != ETIMEDOUT) {
        continue;
    }
    for (pp = &vr_waiters; *pp; pp = &(*pp)->next) {
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    }
    pthread_mutex_unlock(&vr_mutex);

    if (!w.done) {
        error_report(PROBLEM_TIMEOUT, "the virtual router '%s' did not "
                     "answer %s within %lld ms", uuid, method, timeout_ms);
    } else if (!w.reply) {
        error_report(w.problem, "%s", w.message);
    } else if (json_object_get(w.reply, "problem")) {
        const char *p = json_string_value(json_object_get(w.reply,
                                                          "problem"));
        const char *m = json_string_value(json_object_get(w.reply,
                                                          "message"));

        error_report(problem_from_name(p ? p : ""), "virtual router '%s': %s",
                     uuid, m ? m : "(no message)");
    } else if (!json_is_object(json_object_get(w.reply, "result"))) {
        error_report(PROBLEM_PROTOCOL_ERROR, "the virtual router '%s' "
                     "answered %s with a reply that has no result object",
                     uuid, method);
    } else {
        result = json_incref(json_object_get(w.reply, "result"));
    }
    json_decref(w.reply);
    free(w.message);
    return result;
}

/* vr.apply: relays the whole config C, or a delta D as {"delta":D} (an
 * older kvmstack-vr refuses that form: it has no "gen"), to the VR and
 * waits for its gen. */
static json_t *
vr_apply(json_t *params)
{
    char uuid[UUID_LEN + 1];
    json_t *config = json_object_get(params, "config");
    json_t *delta = json_object_get(params, "delta");
    long long timeout_ms;
    json_t *result;

    if (hv_parse_uuid(params, uuid) < 0
        || vr_param_timeout(params, &timeout_ms) < 0) {
        return NULL;
    }
    if (delta && !config) {
        json_t *call;

        if (!json_is_object(delta)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "delta",
                               "'delta' must be an object");
            return NULL;
        }
        call = json_pack("{s:O}", "delta", delta);
        result = vr_call(uuid, "vr.apply", call, timeout_ms);
        json_decref(call);
    } else if (!json_is_object(config)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "config",
                           "'config' must be an object");
        return NULL;
    } else {
        result = vr_call(uuid, "vr.apply", config, timeout_ms);
    }
    if (result) {
        LOG_INFO("vr '%s': %s applied (gen %lld)", uuid,
                 config ? "config" : "delta",
                 (long long) json_integer_value(json_object_get(result,
                                                                "gen")));
    }
    return result;
}

/* vr.status: whether kvmstack-vr is connected, and the gen it applied. */
static json_t *
vr_status(json_t *params)
{
    char uuid[UUID_LEN + 1];
    struct vr_chan *chan;
    json_t *result;

    if (hv_parse_uuid(params, uuid) < 0) {
        return NULL;
    }
    pthread_mutex_lock(&vr_mutex);
    chan = vr_chan_find(uuid);
    result = json_pack("{s:b, s:O}", "connected", chan && chan->ready,
                       "gen", chan && chan->gen ? chan->gen : json_null());
    pthread_mutex_unlock(&vr_mutex);
    return result;
}

static const struct agent_method vr_methods[] = {
    { "vr.apply", vr_apply },
    { "vr.status", vr_status },
    { 0 },
};

const struct agent_module vr_module = {
    .name = "vr",
    .init = vr_init,
    .methods = vr_methods,
    .by_uuid = true,
};
