/* hv.c: the agent's VM methods (vm.start, vm.stop, vm.reboot, vm.destroy,
 * vm.list, vm.console) and its vm.state event, on libvirt's qemu:///system
 * driver, with the domain XML built by libxml2.  The one module that talks
 * to libvirt for VMs: it turns libvirt's errors into problem replies in
 * libvirt's own words.  The contract is in include/kvmstack/proto.h.
 *
 * DESIGN: one shared connection, 'hv_conn', guarded by 'hv_mutex'.  init()
 * registers libvirt's default event loop before any connection exists (a
 * connection only delivers events to an event loop registered before it was
 * opened) and starts two threads.  The loop thread runs
 * virEventRunDefaultImpl() for ever: libvirt dispatches lifecycle events,
 * keepalives and the close of the connection on it.  The monitor thread
 * opens the connection, and opens it again every HV_RETRY_MS while libvirtd
 * is unreachable (not started yet, or restarting), registering the
 * lifecycle callback on every new connection; after a reconnection it
 * reports every domain's state once (reason "resync"), since events of the
 * gap are lost.  Methods run on the agent's main thread and take a
 * reference to the current connection, opening one at once when there is
 * none, so a call right after libvirtd came up does not wait for the
 * monitor.  libvirt runs the close callback on the loop thread while it
 * holds its own locks, so the callback takes no lock of ours that is held
 * across a libvirt call: it sets a flag and wakes the monitor, which drops
 * the dead connection.
 *
 * A domain is named by its VM's uuid (32 lower-case hex digits) and its
 * <uuid> is that uuid with dashes.  Domains are persistent: vm.stop leaves
 * a stopped VM defined (vm.list shows it Stopped), vm.destroy undefines it.
 * vm.start either leaves a running domain or nothing it made itself. */
#include "hv.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"

LOG_MODULE("hostagent.hv");

#define HV_URI "qemu:///system"
#define HV_RETRY_MS 2000            /* Reconnect period of the monitor. */
#define HV_KEEPALIVE_S 5            /* libvirt keepalive interval... */
#define HV_KEEPALIVE_COUNT 3        /* ...and unanswered probes allowed. */
#define HV_DEFAULT_EMULATOR "/usr/bin/qemu-system-x86_64"
#define HV_STOP_TIMEOUT_MS 60000    /* vm.stop default timeoutMs. */
#define HV_STOP_TIMEOUT_MAX 600000  /* The agent serves calls one by one. */
#define HV_POLL_MS 50               /* State poll period while stopping. */
#define HV_ACPI_REPEAT_MS 5000      /* ...and ACPI power button period. */
#define HV_TAIL_DEFAULT 65536       /* vm.console default tailBytes. */
#define HV_TAIL_MAX (512 * 1024)    /* Escaped, it must fit in a frame. */
#define HV_CPU_MAX 512
#define HV_MEMORY_MIN (1024ULL * 1024)
#define HV_MEMORY_MAX (16ULL << 40)
#define HV_UNDEFINE_FLAGS (VIR_DOMAIN_UNDEFINE_MANAGED_SAVE              \
                           | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA      \
                           | VIR_DOMAIN_UNDEFINE_NVRAM                   \
                           | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)

DEFINE_FREEP(hv_conn_freep, virConnect, virConnectClose)
DEFINE_FREEP(hv_domain_freep, virDomain, virDomainFree)
DEFINE_FREEP(hv_xml_doc_freep, xmlDoc, xmlFreeDoc)
DEFINE_FREEP(hv_xml_char_freep, xmlChar, xmlFree)
DEFINE_FREEP(hv_xpath_ctx_freep, xmlXPathContext, xmlXPathFreeContext)
DEFINE_FREEP(hv_xpath_obj_freep, xmlXPathObject, xmlXPathFreeObject)

/* The connection, the callback on it, and whether one was ever open. */
static pthread_mutex_t hv_mutex = PTHREAD_MUTEX_INITIALIZER;
static virConnectPtr hv_conn;       /* NULL while libvirtd is unreachable. */
static int hv_lifecycle_id = -1;    /* Callback id on 'hv_conn'. */
static bool hv_was_connected;       /* A connection was open before. */

/* Set by the close callback (atomically, no lock); read under hv_mutex. */
static int hv_conn_lost;

/* Wakes the monitor thread early (the close callback does). */
static pthread_mutex_t hv_wake_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hv_wake_cond = PTHREAD_COND_INITIALIZER;
static bool hv_wake_pending;

/* ---------------------------------------------------------------- errors */

/* Swallows libvirt's default printing of errors on stderr: hv.c reports
 * them itself with virGetLastErrorMessage(). */
static void
hv_silent_error(void *opaque, virErrorPtr err)
{
    (void) opaque;
    (void) err;
}

/* The problem code that fits libvirt's last error of this thread. */
static enum problem
hv_last_problem(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
        return PROBLEM_NOT_FOUND;
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
        return PROBLEM_INVALID_ARGUMENT;
    case VIR_ERR_OPERATION_INVALID:
        return PROBLEM_CONFLICT;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
        return PROBLEM_NOT_SUPPORTED;
    case VIR_ERR_OPERATION_TIMEOUT:
        return PROBLEM_TIMEOUT;
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_OPERATION_DENIED:
        return PROBLEM_ACCESS_DENIED;
    default:
        return PROBLEM_INTERNAL_ERROR;
    }
}

/* Reports libvirt's last error of this thread, in libvirt's words, after
 * "vm 'uuid': 'what': ". */
static void
hv_report(const char *uuid, const char *what)
{
    error_report(hv_last_problem(), "vm '%s': %s: %s", uuid, what,
                 virGetLastErrorMessage());
}

/* ---------------------------------------------------------------- names */

/* The wire state of libvirt's domain 'state' (virDomainGetState) with its
 * 'reason'. */
static const char *
hv_state_name(int state, int reason)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:       /* Still running while it shuts down. */
        return "Running";
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return "Paused";
    case VIR_DOMAIN_SHUTOFF:
        return reason == VIR_DOMAIN_SHUTOFF_CRASHED ? "Crashed" : "Stopped";
    case VIR_DOMAIN_CRASHED:
        return "Crashed";
    default:
        return "Unknown";
    }
}

/* Element 'i' of the 'n' names in 'names', or "unknown". */
static const char *
hv_pick(const char *const *names, size_t n, int i)
{
    return i >= 0 && (size_t) i < n && names[i] ? names[i] : "unknown";
}

/* Maps a lifecycle 'event' and its 'detail' to the wire state and reason.
 * Returns false for events that vm.state does not forward: DEFINED and
 * UNDEFINED (configuration, not state) and SHUTDOWN, which only says that
 * the guest finished its shutdown sequence: a STOPPED follows when the
 * domain really stops, and after an ACPI reboot RESUMED follows instead. */
static bool
hv_event_state(int event, int detail, const char **state,
               const char **reason)
{
    static const char *const started[] = {
        "booted", "migrated", "restored", "from-snapshot", "wakeup",
    };
    static const char *const suspended[] = {
        "paused", "migrated", "ioerror", "watchdog", "restored",
        "from-snapshot", "api-error", "postcopy", "postcopy-failed",
    };
    static const char *const resumed[] = {
        "unpaused", "migrated", "from-snapshot", "postcopy",
        "postcopy-failed",
    };
    static const char *const stopped[] = {
        "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
        "from-snapshot",
    };
    static const char *const pmsuspended[] = { "pm-memory", "pm-disk" };
    static const char *const crashed[] = { "panicked", "crashloaded" };

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        *state = "Running";
        *reason = hv_pick(started, ARRAY_SIZE(started), detail);
        return true;
    case VIR_DOMAIN_EVENT_RESUMED:
        *state = "Running";
        *reason = hv_pick(resumed, ARRAY_SIZE(resumed), detail);
        return true;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        *state = "Paused";
        *reason = hv_pick(suspended, ARRAY_SIZE(suspended), detail);
        return true;
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        *state = "Paused";
        *reason = hv_pick(pmsuspended, ARRAY_SIZE(pmsuspended), detail);
        return true;
    case VIR_DOMAIN_EVENT_STOPPED:
        /* FAILED: QEMU died (killed, or failed right after its start);
         * libvirt's state is then shut off, reason crashed. */
        *state = detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED
                 || detail == VIR_DOMAIN_EVENT_STOPPED_FAILED ? "Crashed"
                                                              : "Stopped";
        *reason = hv_pick(stopped, ARRAY_SIZE(stopped), detail);
        return true;
    case VIR_DOMAIN_EVENT_CRASHED:
        *state = "Crashed";
        *reason = hv_pick(crashed, ARRAY_SIZE(crashed), detail);
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------- events */

/* libvirt's lifecycle callback, on the loop thread: emits vm.state. */
static int
hv_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                void *opaque)
{
    const char *name = virDomainGetName(dom);
    const char *state;
    const char *reason;

    (void) conn;
    (void) opaque;
    if (!name || !hv_event_state(event, detail, &state, &reason)) {
        LOG_DBG("vm '%s': lifecycle event %d/%d not forwarded",
                name ? name : "?", event, detail);
        return 0;
    }
    LOG_INFO("vm '%s': %s (%s)", name, state, reason);
    agent_emit_event("vm.state", json_pack("{s:s, s:s, s:s}", "uuid", name,
                                           "state", state, "reason",
                                           reason));
    return 0;
}

/* Wakes the monitor thread now. */
static void
hv_wake_monitor(void)
{
    pthread_mutex_lock(&hv_wake_mutex);
    hv_wake_pending = true;
    pthread_cond_signal(&hv_wake_cond);
    pthread_mutex_unlock(&hv_wake_mutex);
}

/* libvirt's close callback, on the loop thread with libvirt's locks held:
 * must not take 'hv_mutex'. */
static void
hv_on_close(virConnectPtr conn, int reason, void *opaque)
{
    (void) conn;
    (void) opaque;
    LOG_WARN("connection to libvirtd closed (reason %d)", reason);
    __atomic_store_n(&hv_conn_lost, 1, __ATOMIC_SEQ_CST);
    hv_wake_monitor();
}

/* Emits vm.state with reason "resync" for every domain on 'conn' (after a
 * reconnection: the events of the gap are lost). */
static void
hv_resync(virConnectPtr conn)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);

    if (n < 0) {
        LOG_WARN("resync after reconnection: %s", virGetLastErrorMessage());
        return;
    }
    for (int i = 0; i < n; i++) {
        int state;
        int reason;

        if (virDomainGetState(doms[i], &state, &reason, 0) == 0) {
            agent_emit_event("vm.state",
                             json_pack("{s:s, s:s, s:s}", "uuid",
                                       virDomainGetName(doms[i]), "state",
                                       hv_state_name(state, reason),
                                       "reason", "resync"));
        }
        virDomainFree(doms[i]);
    }
    free(doms);
}

/* ------------------------------------------------------------ connection */

/* Drops 'hv_conn' and its callbacks.  Caller holds 'hv_mutex'. */
static void
hv_disconnect_locked(void)
{
    if (!hv_conn) {
        return;
    }
    if (hv_lifecycle_id >= 0) {
        virConnectDomainEventDeregisterAny(hv_conn, hv_lifecycle_id);
    }
    virConnectUnregisterCloseCallback(hv_conn, hv_on_close);
    virConnectClose(hv_conn);
    virResetLastError();
    hv_conn = NULL;
    hv_lifecycle_id = -1;
}

/* Opens 'hv_conn' with its keepalive, close and lifecycle callbacks.
 * Caller holds 'hv_mutex'.  Returns 0, or -1 with an error reported. */
static int
hv_connect_locked(void)
{
    virConnectPtr conn = virConnectOpen(HV_URI);
    int id;

    if (!conn) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "libvirtd is not reachable at '%s': %s", HV_URI,
                     virGetLastErrorMessage());
        return -1;
    }
    if (virConnectSetKeepAlive(conn, HV_KEEPALIVE_S, HV_KEEPALIVE_COUNT)
        < 0) {
        LOG_WARN("no keepalive on '%s': %s", HV_URI,
                 virGetLastErrorMessage());
    }
    __atomic_store_n(&hv_conn_lost, 0, __ATOMIC_SEQ_CST);
    if (virConnectRegisterCloseCallback(conn, hv_on_close, NULL, NULL) < 0) {
        LOG_WARN("no close callback on '%s': %s", HV_URI,
                 virGetLastErrorMessage());
    }
    id = virConnectDomainEventRegisterAny(
        conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(hv_on_lifecycle), NULL, NULL);
    if (id < 0) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot watch domain events on '%s': %s", HV_URI,
                     virGetLastErrorMessage());
        virConnectUnregisterCloseCallback(conn, hv_on_close);
        virConnectClose(conn);
        return -1;
    }
    hv_conn = conn;
    hv_lifecycle_id = id;
    LOG_INFO("connected to libvirtd (%s)", HV_URI);
    if (hv_was_connected) {
        hv_resync(conn);
    }
    hv_was_connected = true;
    return 0;
}

/* Drops 'hv_conn' if libvirt closed it.  Caller holds 'hv_mutex'. */
static void
hv_check_locked(void)
{
    if (hv_conn && (__atomic_load_n(&hv_conn_lost, __ATOMIC_SEQ_CST)
                    || virConnectIsAlive(hv_conn) != 1)) {
        LOG_WARN("lost the connection to libvirtd; reconnecting");
        hv_disconnect_locked();
    }
}

/* Returns a reference to the connection (opening it if needed); the
 * caller releases it with virConnectClose().  NULL, with an error
 * reported, while libvirtd is unreachable. */
static virConnectPtr
hv_conn_get(void)
{
    virConnectPtr conn = NULL;

    pthread_mutex_lock(&hv_mutex);
    hv_check_locked();
    if (hv_conn || hv_connect_locked() == 0) {
        conn = hv_conn;
        virConnectRef(conn);
    }
    pthread_mutex_unlock(&hv_mutex);
    return conn;
}

/* The loop thread: runs libvirt's event loop for ever. */
static void *
hv_loop_main(void *arg)
{
    (void) arg;
    for (;;) {
        if (virEventRunDefaultImpl() < 0) {
            LOG_WARN_RL("libvirt event loop: %s", virGetLastErrorMessage());
        }
    }
    return NULL;
}

/* The monitor thread: keeps a connection open, retrying every
 * HV_RETRY_MS while libvirtd is unreachable. */
static void *
hv_monitor_main(void *arg)
{
    (void) arg;
    for (;;) {
        struct timespec deadline;

        pthread_mutex_lock(&hv_mutex);
        hv_check_locked();
        if (!hv_conn && hv_connect_locked() < 0) {
            LOG_WARN_RL("%s; retrying every %d ms", error_last_message(),
                        HV_RETRY_MS);
        }
        pthread_mutex_unlock(&hv_mutex);

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += HV_RETRY_MS / 1000;
        deadline.tv_nsec += (HV_RETRY_MS % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&hv_wake_mutex);
        while (!hv_wake_pending
               && pthread_cond_timedwait(&hv_wake_cond, &hv_wake_mutex,
                                         &deadline) != ETIMEDOUT) {
            continue;
        }
        hv_wake_pending = false;
        pthread_mutex_unlock(&hv_wake_mutex);
    }
    return NULL;
}

/* Starts libvirt's event loop and the monitor.  Never fails because of
 * libvirtd: the monitor connects when it can. */
static int
hv_init(void)
{
    pthread_t loop;
    pthread_t monitor;
    int err;

    xmlInitParser();
    if (virInitialize() < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot initialise libvirt: %s",
                     virGetLastErrorMessage());
        return -1;
    }
    virSetErrorFunc(NULL, hv_silent_error);
    if (virEventRegisterDefaultImpl() < 0) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot register libvirt's event loop: %s",
                     virGetLastErrorMessage());
        return -1;
    }
    err = pthread_create(&loop, NULL, hv_loop_main, NULL);
    if (!err) {
        pthread_detach(loop);
        err = pthread_create(&monitor, NULL, hv_monitor_main, NULL);
    }
    if (err) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot start the libvirt threads: %s", strerror(err));
        return -1;
    }
    pthread_detach(monitor);
    return 0;
}

/* ---------------------------------------------------------------- params */

/* Reads string member 'key' of 'params' into '*out' (borrowed).  Absent or
 * null: '*out' = NULL, an error unless 'optional'.  Strings with a NUL or
 * another control character are refused.  Returns 0 or -1 (reported). */
static int
hv_param_str(json_t *params, const char *key, bool optional,
             const char **out)
{
    json_t *v = json_object_get(params, key);
    const char *s;

    *out = NULL;
    if (!v || json_is_null(v)) {
        if (optional) {
            return 0;
        }
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' is required", key);
        return -1;
    }
    if (!json_is_string(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' must be a string", key);
        return -1;
    }
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' contains a NUL character", key);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "'%s' contains a control character", key);
            return -1;
        }
    }
    *out = s;
    return 0;
}

/* Reads integer member 'key' into '*out', 'dflt' when absent (or an error
 * when 'dflt' < 0); it must lie in ['min', 'max'].  Returns 0 or -1. */
static int
hv_param_int(json_t *params, const char *key, long long dflt,
             long long min, long long max, long long *out)
{
    json_t *v = json_object_get(params, key);

    if (!v || json_is_null(v)) {
        if (dflt < 0) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "'%s' is required", key);
            return -1;
        }
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' must be an integer", key);
        return -1;
    }
    *out = json_integer_value(v);
    if (*out < min || *out > max) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' is %lld, not in %lld-%lld", key, *out, min,
                           max);
        return -1;
    }
    return 0;
}

/* Reads boolean member 'key' into '*out' (false when absent). */
static int
hv_param_bool(json_t *params, const char *key, bool *out)
{
    json_t *v = json_object_get(params, key);

    *out = false;
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int
hv_parse_uuid(json_t *params, char out[UUID_LEN + 1])
{
    const char *s;

    if (hv_param_str(params, "uuid", false, &s) < 0) {
        return -1;
    }
    if (!uuid_is_valid(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "uuid",
                           "uuid '%s' is not 32 hexadecimal digits", s);
        return -1;
    }
    for (size_t i = 0; i <= UUID_LEN; i++) {
        out[i] = (char) (s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a'
                                                    : s[i]);
    }
    return 0;
}

/* Reads member 'key' as an absolute path: '/' first, no "." or ".."
 * component, under PATH_MAX.  Optional when 'optional'.  Returns 0 or
 * -1. */
static int
hv_param_path(json_t *params, const char *key, bool optional,
              const char **out)
{
    const char *s;
    size_t n;

    if (hv_param_str(params, key, optional, out) < 0) {
        return -1;
    }
    if (!*out) {
        return 0;
    }
    s = *out;
    n = strlen(s);
    if (s[0] != '/' || n >= 4096 || s[n - 1] == '/' || strstr(s, "/./")
        || strstr(s, "/../") || strstr(s, "//")
        || (n >= 2 && !strcmp(s + n - 2, "/."))
        || (n >= 3 && !strcmp(s + n - 3, "/.."))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                           "'%s' is '%s', not a normalised absolute path "
                           "of a file", key, s);
        return -1;
    }
    return 0;
}

/* True if 's' is a MAC address "xx:xx:xx:xx:xx:xx" (hex digits). */
static bool
hv_mac_is_valid(const char *s)
{
    if (strlen(s) != 17) {
        return false;
    }
    for (int i = 0; i < 17; i++) {
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
                   || (s[i] >= 'A' && s[i] <= 'F');

        if (i % 3 == 2 ? s[i] != ':' : !hex) {
            return false;
        }
    }
    return true;
}

/* True if 's' can name a Linux bridge: 1-15 of [A-Za-z0-9_.-], not "." or
 * "..". */
static bool
hv_bridge_is_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, "..")) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'
              || *p == '-')) {
            return false;
        }
    }
    return true;
}

static int
hv_nic_cmp(const void *a, const void *b)
{
    const struct hv_nic *x = a;
    const struct hv_nic *y = b;

    return (x->device_id > y->device_id) - (x->device_id < y->device_id);
}

/* Reads the "nics" array into 'spec'.  Returns 0 or -1. */
static int
hv_parse_nics(json_t *params, struct hv_vm_spec *spec)
{
    json_t *nics = json_object_get(params, "nics");
    json_t *nic;
    size_t i;

    if (!nics || json_is_null(nics)) {
        return 0;
    }
    if (!json_is_array(nics) || json_array_size(nics) > 64) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                           "'nics' must be an array of at most 64 NICs");
        return -1;
    }
    spec->nics = xcalloc(json_array_size(nics) + 1, sizeof *spec->nics);
    json_array_foreach (nics, i, nic) {
        struct hv_nic *n = &spec->nics[i];
        const char *mac;
        const char *bridge;
        unsigned int first;

        if (!json_is_object(nic)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                               "nics[%zu] is not an object", i);
            return -1;
        }
        if (hv_param_str(nic, "mac", false, &mac) < 0
            || hv_param_str(nic, "bridge", false, &bridge) < 0
            || hv_param_int(nic, "deviceId", -1, 0, 1000000,
                            &n->device_id) < 0) {
            error_prefix("nics[%zu]: ", i);
            return -1;
        }
        if (!hv_mac_is_valid(mac)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                               "nics[%zu]: mac '%s' is not of the form "
                               "xx:xx:xx:xx:xx:xx", i, mac);
            return -1;
        }
        for (int k = 0; k < 17; k++) {
            n->mac[k] = (char) (mac[k] >= 'A' && mac[k] <= 'F'
                                ? mac[k] - 'A' + 'a' : mac[k]);
        }
        sscanf(n->mac, "%2x", &first);
        if (first & 1 || !strcmp(n->mac, "00:00:00:00:00:00")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                               "nics[%zu]: mac '%s' is not a unicast "
                               "address", i, mac);
            return -1;
        }
        if (!hv_bridge_is_valid(bridge)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                               "nics[%zu]: bridge '%s' is not a bridge name "
                               "(1-15 of A-Z a-z 0-9 _ . -)", i, bridge);
            return -1;
        }
        strcpy(n->bridge, bridge);
        for (size_t j = 0; j < i; j++) {
            if (spec->nics[j].device_id == n->device_id
                || !strcmp(spec->nics[j].mac, n->mac)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, "nics",
                                   "nics[%zu] and nics[%zu] share a "
                                   "deviceId or a mac", j, i);
                return -1;
            }
        }
        spec->n_nics = i + 1;
    }
    qsort(spec->nics, spec->n_nics, sizeof *spec->nics, hv_nic_cmp);
    return 0;
}

/* True if /dev/kvm opens and speaks the KVM API; else false with errno
 * set. */
static bool
hv_kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int version;

    if (fd < 0) {
        return false;
    }
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    if (version != KVM_API_VERSION) {
        errno = version < 0 ? errno : EPROTO;
        return false;
    }
    return true;
}

int
hv_vm_spec_parse(json_t *params, struct hv_vm_spec *spec)
{
    const char *name;
    const char *type;
    const char *root;
    const char *log;
    long long memory;
    bool vr;

    memset(spec, 0, sizeof *spec);
    if (hv_parse_uuid(params, spec->uuid) < 0
        || hv_param_str(params, "name", true, &name) < 0
        || hv_param_int(params, "cpuNum", -1, 1, HV_CPU_MAX,
                        &spec->cpu_num) < 0
        || hv_param_int(params, "memorySize", -1, HV_MEMORY_MIN,
                        HV_MEMORY_MAX, &memory) < 0
        || hv_param_str(params, "domainType", false, &type) < 0
        || hv_param_path(params, "rootVolume", false, &root) < 0
        || hv_param_path(params, "consoleLog", true, &log) < 0
        || hv_param_bool(params, "vrChannel", &vr) < 0
        || hv_parse_nics(params, spec) < 0) {
        return -1;
    }
    if (name && strlen(name) > 255) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "name",
                           "'name' is longer than 255 bytes");
        return -1;
    }
    if (strcmp(type, "kvm") && strcmp(type, "qemu")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "domainType",
                           "domainType '%s' is neither 'kvm' nor 'qemu'",
                           type);
        return -1;
    }
    if (!strcmp(type, "kvm") && !hv_kvm_usable()) {
        error_report_field(PROBLEM_NOT_SUPPORTED, "domainType",
                           "domainType 'kvm' needs a usable /dev/kvm on this "
                           "host: %s", strerror(errno));
        return -1;
    }
    spec->name = name ? xstrdup(name) : NULL;
    spec->domain_type = xstrdup(type);
    spec->memory_kib = ((unsigned long long) memory + 1023) / 1024;
    spec->root_volume = xstrdup(root);
    spec->console_log = log ? xstrdup(log)
                            : xasprintf("/var/log/libvirt/qemu/%s-serial.log",
                                        spec->uuid);
    spec->vr_socket = vr ? xasprintf("%s/%s.sock", HV_VR_DIR, spec->uuid)
                         : NULL;
    return 0;
}

void
hv_vm_spec_destroy(struct hv_vm_spec *spec)
{
    free(spec->name);
    free(spec->domain_type);
    free(spec->root_volume);
    free(spec->console_log);
    free(spec->vr_socket);
    free(spec->nics);
    memset(spec, 0, sizeof *spec);
}

/* ------------------------------------------------------------ domain XML */

/* Adds element 'name' under 'parent', with escaped 'text' (or empty when
 * NULL), and returns it. */
static xmlNodePtr
hv_xml_add(xmlNodePtr parent, const char *name, const char *text)
{
    return xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
}

/* Sets attribute 'name' of 'node' to 'value' (escaped by libxml2). */
static void
hv_xml_set(xmlNodePtr node, const char *name, const char *value)
{
    xmlSetProp(node, BAD_CAST name, BAD_CAST value);
}

/* Adds element 'name' under 'parent' with one attribute set. */
static xmlNodePtr
hv_xml_add1(xmlNodePtr parent, const char *name, const char *attr,
            const char *value)
{
    xmlNodePtr node = hv_xml_add(parent, name, NULL);

    hv_xml_set(node, attr, value);
    return node;
}

char *
hv_domain_xml(const struct hv_vm_spec *spec, const char *emulator,
              const char *arch)
{
    AUTO(hv_xml_doc_freep) xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr dom = xmlNewNode(NULL, BAD_CAST "domain");
    xmlNodePtr node;
    xmlNodePtr devices;
    AUTO(hv_xml_char_freep) xmlChar *text = NULL;
    int len = 0;
    char buf[64];
    const char *u = spec->uuid;

    xmlDocSetRootElement(doc, dom);
    hv_xml_set(dom, "type", spec->domain_type);
    hv_xml_add(dom, "name", spec->uuid);
    snprintf(buf, sizeof buf, "%.8s-%.4s-%.4s-%.4s-%.12s", u, u + 8, u + 12,
             u + 16, u + 20);
    hv_xml_add(dom, "uuid", buf);
    if (spec->name) {
        hv_xml_add(dom, "title", spec->name);
    }
    snprintf(buf, sizeof buf, "%llu", spec->memory_kib);
    hv_xml_set(hv_xml_add(dom, "memory", buf), "unit", "KiB");
    snprintf(buf, sizeof buf, "%lld", spec->cpu_num);
    hv_xml_add(dom, "vcpu", buf);

    node = hv_xml_add(dom, "os", NULL);
    node = hv_xml_add(node, "type", "hvm");
    hv_xml_set(node, "arch", arch);
    hv_xml_set(node, "machine", "pc");
    hv_xml_add1(node->parent, "boot", "dev", "hd");
    /* SeaBIOS prints on the serial console: its messages ("No bootable
     * device.") then show in vm.console. */
    hv_xml_add1(node->parent, "bios", "useserial", "yes");

    hv_xml_add(hv_xml_add(dom, "features", NULL), "acpi", NULL);
    hv_xml_add1(dom, "clock", "offset", "utc");
    hv_xml_add(dom, "on_poweroff", "destroy");
    hv_xml_add(dom, "on_reboot", "restart");
    hv_xml_add(dom, "on_crash", "destroy");

    devices = hv_xml_add(dom, "devices", NULL);
    hv_xml_add(devices, "emulator", emulator);

    node = hv_xml_add(devices, "disk", NULL);
    hv_xml_set(node, "type", "file");
    hv_xml_set(node, "device", "disk");
    hv_xml_set(hv_xml_add1(node, "driver", "name", "qemu"), "type", "qcow2");
    hv_xml_add1(node, "source", "file", spec->root_volume);
    hv_xml_set(hv_xml_add1(node, "target", "dev", "vda"), "bus", "virtio");

    for (size_t i = 0; i < spec->n_nics; i++) {
        node = hv_xml_add1(devices, "interface", "type", "bridge");
        hv_xml_add1(node, "mac", "address", spec->nics[i].mac);
        hv_xml_add1(node, "source", "bridge", spec->nics[i].bridge);
        hv_xml_add1(node, "model", "type", "virtio");
    }

    node = hv_xml_add1(devices, "serial", "type", "pty");
    hv_xml_set(hv_xml_add1(node, "log", "file", spec->console_log), "append",
               "off");
    hv_xml_add1(node, "target", "port", "0");
    node = hv_xml_add1(devices, "console", "type", "pty");
    hv_xml_set(hv_xml_add1(node, "target", "type", "serial"), "port", "0");

    if (spec->vr_socket) {
        node = hv_xml_add1(devices, "channel", "type", "unix");
        hv_xml_set(hv_xml_add1(node, "source", "mode", "bind"), "path",
                   spec->vr_socket);
        hv_xml_set(hv_xml_add1(node, "target", "type", "virtio"), "name",
                   HV_VR_PORT);
    }
    hv_xml_add1(devices, "memballoon", "model", "none");

    xmlDocDumpFormatMemory(doc, &text, &len, 1);
    return xstrndup((const char *) text, (size_t) len);
}

/* The string value of XPath 'expr' in XML 'xml', or NULL when it is empty
 * or the XML does not parse.  Caller frees. */
static char *
hv_xpath_string(const char *xml, const char *expr)
{
    AUTO(hv_xml_doc_freep) xmlDoc *doc =
        xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                      XML_PARSE_NONET | XML_PARSE_NOERROR
                      | XML_PARSE_NOWARNING);
    AUTO(hv_xpath_ctx_freep) xmlXPathContext *ctx =
        doc ? xmlXPathNewContext(doc) : NULL;
    AUTO(hv_xpath_obj_freep) xmlXPathObject *obj =
        ctx ? xmlXPathEvalExpression(BAD_CAST expr, ctx) : NULL;

    if (!obj || obj->type != XPATH_STRING || !obj->stringval
        || !obj->stringval[0]) {
        return NULL;
    }
    return xstrdup((const char *) obj->stringval);
}

/* The emulator binary that libvirt's domain capabilities name for
 * 'arch' and 'type', or HV_DEFAULT_EMULATOR.  Caller frees. */
static char *
hv_emulator(virConnectPtr conn, const char *arch, const char *type)
{
    AUTOFREE char *caps = virConnectGetDomainCapabilities(conn, NULL, arch,
                                                          NULL, type, 0);
    char *path = caps ? hv_xpath_string(caps,
                                        "string(/domainCapabilities/path)")
                      : NULL;

    if (!caps) {
        LOG_WARN("no domain capabilities for %s/%s (%s); using %s", arch,
                 type, virGetLastErrorMessage(), HV_DEFAULT_EMULATOR);
    }
    return path ? path : xstrdup(HV_DEFAULT_EMULATOR);
}

/* Creates directory 'dir' and its missing parents with 'mode'.  Returns 0
 * or -1 with an error reported. */
static int
hv_mkdirs(const char *dir, mode_t mode)
{
    AUTOFREE char *p = xstrdup(dir);

    for (char *s = p + 1; ; s++) {
        if (*s == '/' || !*s) {
            char c = *s;

            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                error_report(PROBLEM_INTERNAL_ERROR,
                             "cannot create directory '%s': %s", p,
                             strerror(errno));
                return -1;
            }
            *s = c;
            if (!c) {
                return 0;
            }
        }
    }
}

/* Creates the parent directory of file 'path'.  Returns 0 or -1. */
static int
hv_mkdirs_for(const char *path, mode_t mode)
{
    AUTOFREE char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');

    if (slash == dir) {
        return 0;
    }
    *slash = '\0';
    return hv_mkdirs(dir, mode);
}

/* ---------------------------------------------------------------- domains */

/* Looks up the domain of VM 'uuid' on 'conn'.  Returns it (caller frees
 * with virDomainFree()), or NULL: with '*absent' set when there is no such
 * domain, else with an error reported. */
static virDomainPtr
hv_lookup(virConnectPtr conn, const char *uuid, bool *absent)
{
    virDomainPtr dom = virDomainLookupByName(conn, uuid);

    *absent = false;
    if (!dom) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
            *absent = true;
            virResetLastError();
        } else {
            hv_report(uuid, "cannot look up the domain");
        }
    }
    return dom;
}

/* hv_lookup() for a domain that must exist: an absent one is not-found. */
static virDomainPtr
hv_lookup_existing(virConnectPtr conn, const char *uuid)
{
    bool absent;
    virDomainPtr dom = hv_lookup(conn, uuid, &absent);

    if (!dom && absent) {
        error_report(PROBLEM_NOT_FOUND, "vm '%s': no such domain", uuid);
    }
    return dom;
}

/* libvirt's state of 'dom' into '*state' (and '*reason').  Returns 0 or
 * -1 with an error reported. */
static int
hv_get_state(virDomainPtr dom, int *state, int *reason)
{
    if (virDomainGetState(dom, state, reason, 0) < 0) {
        hv_report(virDomainGetName(dom), "cannot read the domain state");
        return -1;
    }
    return 0;
}

/* True if 'state' is one where the domain has a running QEMU. */
static bool
hv_state_active(int state)
{
    return state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_NOSTATE;
}

/* Destroys (hard power-off) 'dom' unless it is already off.  Returns 0 or
 * -1 with an error reported. */
static int
hv_destroy_domain(virDomainPtr dom)
{
    int state;
    int reason;

    if (virDomainDestroy(dom) == 0) {
        return 0;
    }
    /* It may have stopped on its own since it was last looked at. */
    if (virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID
        && virDomainGetState(dom, &state, &reason, 0) == 0
        && !hv_state_active(state)) {
        virResetLastError();
        return 0;
    }
    hv_report(virDomainGetName(dom), "cannot destroy the domain");
    return -1;
}

/* Milliseconds since 'start_ms' (time_msec()). */
static long long
hv_since(int64_t start_ms)
{
    return (long long) (time_msec() - start_ms);
}

/* vm.start: defines and starts the domain of the VM; idempotent. */
static json_t *
hv_vm_start(json_t *params)
{
    AUTO(hv_vm_spec_destroy) struct hv_vm_spec spec = { .nics = NULL };
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTO(hv_domain_freep) virDomain *old = NULL;
    AUTO(hv_domain_freep) virDomain *dom = NULL;
    AUTOFREE char *emulator = NULL;
    AUTOFREE char *xml = NULL;
    struct utsname un;
    bool absent;
    int state;
    int reason;
    int64_t t0;
    long long define_ms;

    if (hv_vm_spec_parse(params, &spec) < 0 || !(conn = hv_conn_get())) {
        return NULL;
    }
    old = hv_lookup(conn, spec.uuid, &absent);
    if (!old && !absent) {
        return NULL;
    }
    if (old) {
        if (hv_get_state(old, &state, &reason) < 0) {
            return NULL;
        }
        if (state == VIR_DOMAIN_PAUSED && virDomainResume(old) < 0) {
            hv_report(spec.uuid, "cannot resume the paused domain");
            return NULL;
        }
        if (hv_state_active(state)) {
            LOG_INFO("vm '%s': already running", spec.uuid);
            return json_pack("{s:s}", "state", "Running");
        }
    }

    uname(&un);
    emulator = hv_emulator(conn, un.machine, spec.domain_type);
    xml = hv_domain_xml(&spec, emulator, un.machine);
    LOG_DBG("vm '%s': domain XML:\n%s", spec.uuid, xml);
    if (hv_mkdirs_for(spec.console_log, 0755) < 0
        || (spec.vr_socket && hv_mkdirs(HV_VR_DIR, 0700) < 0)) {
        error_prefix("vm '%s': ", spec.uuid);
        return NULL;
    }

    t0 = time_msec();
    dom = virDomainDefineXML(conn, xml);
    if (!dom) {
        hv_report(spec.uuid, "cannot define the domain");
        return NULL;
    }
    define_ms = hv_since(t0);
    if (virDomainCreate(dom) < 0) {
        hv_report(spec.uuid, "cannot start the domain");
        /* No half-made VM: a domain this call defined goes again. */
        if (absent && virDomainUndefineFlags(dom, HV_UNDEFINE_FLAGS) < 0) {
            LOG_WARN("vm '%s': cannot undefine the domain that failed to "
                     "start: %s", spec.uuid, virGetLastErrorMessage());
        }
        return NULL;
    }
    LOG_INFO("vm '%s': %s, started (define %lld ms, total %lld ms)",
             spec.uuid, absent ? "defined" : "redefined", define_ms,
             hv_since(t0));
    return json_pack("{s:s}", "state", "Running");
}

/* vm.xml: the domain XML that vm.start would define for these params,
 * after the same checks (a domainType 'kvm' needs a usable /dev/kvm);
 * nothing is defined or started.  For operators and for tests on hosts
 * where a KVM guest must not run (nested KVM). */
static json_t *
hv_vm_xml(json_t *params)
{
    AUTO(hv_vm_spec_destroy) struct hv_vm_spec spec = { .nics = NULL };
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTOFREE char *emulator = NULL;
    AUTOFREE char *xml = NULL;
    struct utsname un;

    if (hv_vm_spec_parse(params, &spec) < 0 || !(conn = hv_conn_get())) {
        return NULL;
    }
    uname(&un);
    emulator = hv_emulator(conn, un.machine, spec.domain_type);
    xml = hv_domain_xml(&spec, emulator, un.machine);
    return json_pack("{s:s}", "xml", xml);
}

/* vm.stop: ACPI power button (pressed again every HV_ACPI_REPEAT_MS), then
 * destroy after timeoutMs (at once with force).  Idempotent: an absent or
 * stopped domain is Stopped. */
static json_t *
hv_vm_stop(json_t *params)
{
    char uuid[UUID_LEN + 1];
    bool force;
    long long timeout_ms;
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTO(hv_domain_freep) virDomain *dom = NULL;
    bool absent;
    bool forced = false;
    int state;
    int reason;
    int64_t t0 = time_msec();

    if (hv_parse_uuid(params, uuid) < 0
        || hv_param_bool(params, "force", &force) < 0
        || hv_param_int(params, "timeoutMs", HV_STOP_TIMEOUT_MS, 0,
                        HV_STOP_TIMEOUT_MAX, &timeout_ms) < 0
        || !(conn = hv_conn_get())) {
        return NULL;
    }
    dom = hv_lookup(conn, uuid, &absent);
    if (!dom) {
        return absent ? json_pack("{s:s, s:b}", "state", "Stopped",
                                  "forced", false)
                      : NULL;
    }
    if (hv_get_state(dom, &state, &reason) < 0) {
        return NULL;
    }
    if (hv_state_active(state) && !force) {
        if (virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            < 0) {
            LOG_WARN("vm '%s': ACPI shutdown failed (%s); destroying",
                     uuid, virGetLastErrorMessage());
        } else {
            struct timespec pause = { 0, HV_POLL_MS * 1000000L };
            int64_t pressed = time_msec();

            while (hv_get_state(dom, &state, &reason) == 0
                   && hv_state_active(state)
                   && hv_since(t0) < timeout_ms) {
                /* A guest still booting may miss a press: press again. */
                if (hv_since(pressed) >= HV_ACPI_REPEAT_MS) {
                    virDomainShutdownFlags(dom,
                                           VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
                    pressed = time_msec();
                }
                nanosleep(&pause, NULL);
            }
        }
        if (hv_get_state(dom, &state, &reason) < 0) {
            return NULL;
        }
    }
    if (hv_state_active(state)) {
        if (hv_destroy_domain(dom) < 0) {
            return NULL;
        }
        forced = true;
    }
    LOG_INFO("vm '%s': stopped%s in %lld ms", uuid,
             forced ? " (destroyed)" : "", hv_since(t0));
    return json_pack("{s:s, s:b}", "state", "Stopped", "forced", forced);
}

/* vm.reboot: ACPI reboot request, or a hard reset with force. */
static json_t *
hv_vm_reboot(json_t *params)
{
    char uuid[UUID_LEN + 1];
    bool force;
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTO(hv_domain_freep) virDomain *dom = NULL;
    int state;
    int reason;

    if (hv_parse_uuid(params, uuid) < 0
        || hv_param_bool(params, "force", &force) < 0
        || !(conn = hv_conn_get())) {
        return NULL;
    }
    dom = hv_lookup_existing(conn, uuid);
    if (!dom) {
        return NULL;
    }
    if (hv_get_state(dom, &state, &reason) < 0) {
        return NULL;
    }
    if (!hv_state_active(state)) {
        error_report(PROBLEM_CONFLICT, "vm '%s': cannot reboot: it is %s",
                     uuid, hv_state_name(state, reason));
        return NULL;
    }
    if (force ? virDomainReset(dom, 0) < 0
              : virDomainReboot(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN) < 0) {
        hv_report(uuid, force ? "cannot reset" : "cannot reboot");
        return NULL;
    }
    LOG_INFO("vm '%s': %s", uuid, force ? "reset" : "ACPI reboot requested");
    return json_pack("{s:s}", "state", "Running");
}

/* vm.destroy: destroys and undefines; idempotent. */
static json_t *
hv_vm_destroy(json_t *params)
{
    char uuid[UUID_LEN + 1];
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTO(hv_domain_freep) virDomain *dom = NULL;
    AUTOFREE char *sock = NULL;
    bool absent;
    int64_t t0 = time_msec();

    if (hv_parse_uuid(params, uuid) < 0 || !(conn = hv_conn_get())) {
        return NULL;
    }
    dom = hv_lookup(conn, uuid, &absent);
    if (!dom) {
        return absent ? json_object() : NULL;
    }
    if (virDomainIsActive(dom) == 1 && hv_destroy_domain(dom) < 0) {
        return NULL;
    }
    /* A transient domain is gone once destroyed. */
    if (virDomainIsPersistent(dom) == 1
        && virDomainUndefineFlags(dom, HV_UNDEFINE_FLAGS) < 0
        && virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
        hv_report(uuid, "cannot undefine the domain");
        return NULL;
    }
    sock = xasprintf("%s/%s.sock", HV_VR_DIR, uuid);
    if (unlink(sock) < 0 && errno != ENOENT) {
        LOG_WARN("vm '%s': cannot remove '%s': %s", uuid, sock,
                 strerror(errno));
    }
    LOG_INFO("vm '%s': destroyed and undefined in %lld ms", uuid,
             hv_since(t0));
    return json_object();
}

/* vm.list: every domain of the host with its state. */
static json_t *
hv_vm_list(json_t *params)
{
    virConnectPtr conn = hv_conn_get();
    virDomainPtr *doms = NULL;
    json_t *vms;
    int n;

    (void) params;
    if (!conn) {
        return NULL;
    }
    n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        error_report(hv_last_problem(), "cannot list domains: %s",
                     virGetLastErrorMessage());
        virConnectClose(conn);
        return NULL;
    }
    vms = json_array();
    for (int i = 0; i < n; i++) {
        int state;
        int reason;

        /* A domain undefined since the listing is left out. */
        if (virDomainGetState(doms[i], &state, &reason, 0) == 0) {
            json_array_append_new(vms, json_pack(
                "{s:s, s:s}", "uuid", virDomainGetName(doms[i]), "state",
                hv_state_name(state, reason)));
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    virConnectClose(conn);
    return json_pack("{s:o}", "vms", vms);
}

/* Turns 'n' bytes at 's' into valid UTF-8 text: a sequence cut at the
 * start is skipped and every invalid byte becomes U+FFFD.  Returns the new
 * string (caller frees). */
static char *
hv_utf8_clean(const unsigned char *s, size_t n)
{
    struct sbuf out;
    size_t i = 0;

    sbuf_init(&out);
    while (i < n && i < 3 && (s[i] & 0xc0) == 0x80) {
        i++;
    }
    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xc2)
                  && !(len == 4 && c > 0xf4);

        for (size_t k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xc0) == 0x80;
        }
        if (ok && len == 3) {
            unsigned int cp = (c & 0x0fu) << 12 | (s[i + 1] & 0x3fu) << 6
                              | (s[i + 2] & 0x3fu);

            ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (ok && len == 4) {
            unsigned int cp = (c & 0x07u) << 18 | (s[i + 1] & 0x3fu) << 12;

            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (ok) {
            sbuf_add(&out, s + i, len);
            i += len;
        } else {
            sbuf_addstr(&out, "\xef\xbf\xbd");
            i++;
        }
    }
    return sbuf_take(&out);
}

/* Reads at most the last 'tail' bytes of file 'path' into '*text' (valid
 * UTF-8; "" when the file does not exist yet) and its size into '*size'.
 * Returns 0 or -1 with an error reported. */
static int
hv_read_tail(const char *path, size_t tail, char **text, long long *size)
{
    AUTOFREE unsigned char *buf = xmalloc(tail + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t got = 0;

    *text = NULL;
    *size = 0;
    if (fd < 0) {
        if (errno == ENOENT) {
            *text = xstrdup("");
            return 0;
        }
        error_report(PROBLEM_INTERNAL_ERROR, "cannot open '%s': %s", path,
                     strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && st.st_size > (off_t) tail) {
        lseek(fd, st.st_size - (off_t) tail, SEEK_SET);
    }
    while (got < tail) {
        ssize_t r = read(fd, buf + got, tail - got);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            error_report(PROBLEM_INTERNAL_ERROR, "cannot read '%s': %s",
                         path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t) r;
    }
    close(fd);
    *size = (long long) st.st_size;
    *text = hv_utf8_clean(buf, got);
    return 0;
}

/* vm.console: the tail of the serial console log of the VM. */
static json_t *
hv_vm_console(json_t *params)
{
    char uuid[UUID_LEN + 1];
    long long tail;
    AUTO(hv_conn_freep) virConnect *conn = NULL;
    AUTO(hv_domain_freep) virDomain *dom = NULL;
    AUTOFREE char *xml = NULL;
    AUTOFREE char *path = NULL;
    AUTOFREE char *text = NULL;
    long long size;

    if (hv_parse_uuid(params, uuid) < 0
        || hv_param_int(params, "tailBytes", HV_TAIL_DEFAULT, 0, HV_TAIL_MAX,
                        &tail) < 0
        || !(conn = hv_conn_get())) {
        return NULL;
    }
    dom = hv_lookup_existing(conn, uuid);
    if (!dom) {
        return NULL;
    }
    xml = virDomainGetXMLDesc(dom, 0);
    if (!xml) {
        hv_report(uuid, "cannot read the domain XML");
        return NULL;
    }
    path = hv_xpath_string(xml,
                           "string(/domain/devices/serial[1]/log/@file)");
    if (!path) {
        error_report(PROBLEM_NOT_FOUND, "vm '%s': its serial console has no "
                     "log file", uuid);
        return NULL;
    }
    if (hv_read_tail(path, (size_t) tail, &text, &size) < 0) {
        error_prefix("vm '%s': ", uuid);
        return NULL;
    }
    return json_pack("{s:s%, s:I}", "text", text, strlen(text), "sizeBytes",
                     (json_int_t) size);
}

static const struct agent_method hv_methods[] = {
    { "vm.start", hv_vm_start },
    { "vm.stop", hv_vm_stop },
    { "vm.reboot", hv_vm_reboot },
    { "vm.destroy", hv_vm_destroy },
    { "vm.list", hv_vm_list },
    { "vm.console", hv_vm_console },
    { "vm.xml", hv_vm_xml },
    { 0 },
};

const struct agent_module hv_module = {
    .name = "hv",
    .init = hv_init,
    .methods = hv_methods,
    .by_uuid = true,
};
