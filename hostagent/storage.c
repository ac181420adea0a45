/* storage.c: the agent's storage methods (proto.h, "Storage"): NFS primary
 * storage mounts, image checks and commits, qcow2 volumes.
 *
 * DESIGN: every path that mgmt sends is checked before anything touches
 * it: absolute, lexically normalised (no empty, "." or ".." component),
 * strictly under the storage root (agent.conf "storage_root", default
 * /var/lib/kvmstack), and its deepest existing ancestor must still resolve
 * under the root once symlinks are followed.  External programs (mount,
 * qemu-img) run with fork/execvp, never through a shell: the NFS mount
 * command is an argv template from agent.conf whose words each become one
 * argv element after {url} {server} {export} {path} are substituted, so a
 * URL can never add words.  Children get /dev/null on stdin and pipes on
 * stdout/stderr (the agent's own stdout is the protocol), no other file
 * descriptor, default SIGPIPE, and a deadline after which they are killed.
 * Mount state is read from /proc/self/mountinfo, so every method is
 * idempotent and the module keeps no state of its own. */
#include "dispatch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.storage");

#define STORAGE_DEFAULT_ROOT "/var/lib/kvmstack"
#define STORAGE_DEFAULT_MOUNT "mount -t nfs -o soft,timeo=100 {url} {path}"
#define STORAGE_MOUNT_TIMEOUT_MS (120 * 1000)
#define STORAGE_QEMU_IMG_TIMEOUT_MS (120 * 1000)
#define STORAGE_MAX_OUTPUT (1024 * 1024)    /* Per captured stream. */
#define STORAGE_MAX_ARGS 64                 /* Words of a command template. */

/* ------------------------------------------------------------------ */
/* Parameters. */

/* The string member 'field' of 'params', or NULL with invalid-argument
 * reported when it is missing, not a string or empty. */
static const char *
storage_param_str(json_t *params, const char *field)
{
    const char *s = json_string_value(json_object_get(params, field));

    if (!s || !*s) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be a non-empty string", field);
        return NULL;
    }
    return s;
}

/* The storage root from agent.conf; caller frees.  NULL with
 * internal-error reported when the configured value is not an absolute,
 * normalised path. */
static char *
storage_root(void)
{
    char *root = agent_config("storage_root", STORAGE_DEFAULT_ROOT);
    size_t n = strlen(root);

    if (root[0] != '/' || n < 2 || root[n - 1] == '/' || strstr(root, "//")
        || strstr(root, "/./") || strstr(root, "/../")
        || (n >= 2 && !strcmp(root + n - 2, "/."))
        || (n >= 3 && !strcmp(root + n - 3, "/.."))) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "agent.conf: storage_root '%s' is not an absolute, "
                     "normalised directory", root);
        free(root);
        return NULL;
    }
    return root;
}

/* True if 'path' is absolute and lexically normalised: no empty, "." or
 * ".." component, no trailing '/', no control characters. */
static bool
storage_path_is_normal(const char *path)
{
    const char *p = path;

    if (*p != '/') {
        return false;
    }
    while (*p) {
        const char *c = ++p;        /* Start of a component. */
        size_t len;

        while (*p && *p != '/') {
            if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                return false;
            }
            p++;
        }
        len = (size_t) (p - c);
        if (len == 0 || (len == 1 && c[0] == '.')
            || (len == 2 && c[0] == '.' && c[1] == '.')) {
            return false;
        }
    }
    return true;
}

/* Checks that the deepest existing ancestor of 'path' (or 'path' itself)
 * resolves, symlinks followed, under the real storage root 'root'.  Returns
 * 0, or -1 with an error reported. */
static int
storage_check_resolved(const char *field, const char *path, const char *root)
{
    AUTOFREE char *rroot = realpath(root, NULL);
    AUTOFREE char *p = xstrdup(path);
    AUTOFREE char *rp = NULL;
    struct stat st;
    size_t n;

    if (!rroot) {
        /* Nothing exists under a missing root, so nothing can escape. */
        return 0;
    }
    while (lstat(p, &st) < 0) {
        char *slash = strrchr(p, '/');

        if (errno != ENOENT && errno != ENOTDIR) {
            error_report_field(PROBLEM_INTERNAL_ERROR, field,
                               "cannot inspect '%s': %s", p,
                               strerror(errno));
            return -1;
        }
        if (!slash || slash == p) {
            return 0;
        }
        *slash = '\0';
    }
    rp = realpath(p, NULL);
    if (!rp) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "cannot resolve '%s': %s", p, strerror(errno));
        return -1;
    }
    n = strlen(rroot);
    if (strncmp(rp, rroot, n) || (rp[n] != '\0' && rp[n] != '/')) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' resolves to '%s', outside the storage root "
                           "'%s'", path, rp, root);
        return -1;
    }
    return 0;
}

/* The path parameter 'field' of 'params', checked as the file comment
 * describes.  Returns it (borrowed from 'params'), or NULL with
 * invalid-argument reported. */
static const char *
storage_param_path(json_t *params, const char *field)
{
    const char *path = storage_param_str(params, field);
    AUTOFREE char *root = NULL;
    size_t n;

    if (!path) {
        return NULL;
    }
    root = storage_root();
    if (!root) {
        return NULL;
    }
    n = strlen(root);
    if (strlen(path) >= PATH_MAX || !storage_path_is_normal(path)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an absolute, normalised path (no "
                           "'.', '..', '//' or trailing '/'): '%s'",
                           field, path);
        return NULL;
    }
    if (strncmp(path, root, n) || path[n] != '/') {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be under the storage root '%s': '%s'",
                           field, root, path);
        return NULL;
    }
    if (storage_check_resolved(field, path, root) < 0) {
        return NULL;
    }
    return path;
}

/* Creates directory 'path' and its missing parents (mode 0755).  'path'
 * has been checked by storage_param_path() or is a prefix of such a path.
 * Returns 0, or -1 with an error reported. */
static int
storage_mkdir_p(const char *path)
{
    AUTOFREE char *p = xstrdup(path);

    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            struct stat st;

            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                error_report(PROBLEM_INTERNAL_ERROR,
                             "cannot create directory '%s': %s", p,
                             strerror(errno));
                return -1;
            }
            if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
                error_report(PROBLEM_CONFLICT, "'%s' exists and is not a "
                             "directory", p);
                return -1;
            }
            *s = c;
            if (!c) {
                break;
            }
        }
    }
    return 0;
}

/* Creates the parent directory of 'path'.  Returns 0 or -1 (reported). */
static int
storage_mkdir_parent(const char *path)
{
    AUTOFREE char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');

    if (!slash || slash == dir) {
        return 0;
    }
    *slash = '\0';
    return storage_mkdir_p(dir);
}

/* ------------------------------------------------------------------ */
/* Running programs. */

/* What a finished child left behind. */
struct storage_run {
    int status;                 /* Exit status; 128 + N if killed by N. */
    struct sbuf out;            /* Its stdout (at most STORAGE_MAX_OUTPUT). */
    struct sbuf err;            /* Its stderr, likewise. */
    char *msg;                  /* storage_run_message()'s answer. */
};

/* Frees the captured output of 'r'. */
static void
storage_run_destroy(struct storage_run *r)
{
    sbuf_destroy(&r->out);
    sbuf_destroy(&r->err);
    free(r->msg);
    r->msg = NULL;
}

/* The child's side of storage_run_argv(); never returns. */
static void __attribute__((noreturn))
storage_child(char *const argv[], int in_fd, int out_fd, int err_fd,
              int status_fd)
{
    sigset_t none;
    int e;

    /* Only async-signal-safe calls between fork and exec. */
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0
        || dup2(err_fd, STDERR_FILENO) < 0) {
        e = errno;
        (void) !write(status_fd, &e, sizeof e);
        _exit(127);
    }
    if (status_fd != 3) {
        if (dup3(status_fd, 3, O_CLOEXEC) < 0) {
            e = errno;
            (void) !write(status_fd, &e, sizeof e);
            _exit(127);
        }
    }
    close_range(4, ~0U, 0);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    e = errno;
    (void) !write(3, &e, sizeof e);
    _exit(127);
}

/* Appends what is readable on 'fd' to 'b' (up to STORAGE_MAX_OUTPUT; the
 * rest is read and dropped).  Returns 1 while the stream is open, 0 at
 * EOF. */
static int
storage_drain(int fd, struct sbuf *b)
{
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof buf);

    if (n < 0) {
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    }
    if (n == 0) {
        return 0;
    }
    if (b->len < STORAGE_MAX_OUTPUT) {
        size_t room = STORAGE_MAX_OUTPUT - b->len;

        sbuf_add(b, buf, (size_t) n < room ? (size_t) n : room);
    }
    return 1;
}

/* Runs 'argv' (argv[0] looked up in PATH, no shell) with stdin /dev/null,
 * capturing stdout and stderr into 'r' (caller destroys it with
 * storage_run_destroy() either way).  Kills the child after 'timeout_ms'.
 * Returns 0 when the child ran to its end (its status in r->status), or -1
 * with an error reported when it could not start or timed out. */
static int
storage_run_argv(char *const argv[], int timeout_ms, struct storage_run *r)
{
    int out[2] = { -1, -1 };
    int err[2] = { -1, -1 };
    int st[2] = { -1, -1 };
    int devnull = -1;
    int64_t deadline = time_msec() + timeout_ms;
    bool out_open = true;
    bool err_open = true;
    bool timed_out = false;
    int exec_errno = 0;
    int wstatus = 0;
    int rc = -1;
    pid_t pid;

    sbuf_init(&r->out);
    sbuf_init(&r->err);
    r->msg = NULL;
    r->status = -1;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0
        || pipe2(st, O_CLOEXEC) < 0
        || (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot run '%s': %s", argv[0],
                     strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot run '%s': fork: %s",
                     argv[0], strerror(errno));
        goto out;
    }
    if (pid == 0) {
        storage_child(argv, devnull, out[1], err[1], st[1]);
    }
    close(out[1]);
    close(err[1]);
    close(st[1]);
    out[1] = err[1] = st[1] = -1;

    while (out_open || err_open) {
        struct pollfd pfd[2] = {
            { .fd = out_open ? out[0] : -1, .events = POLLIN },
            { .fd = err_open ? err[0] : -1, .events = POLLIN },
        };
        int64_t left = deadline - time_msec();
        int n;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        n = poll(pfd, 2, (int) (left > INT_MAX ? INT_MAX : left));
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n <= 0) {
            continue;
        }
        if (pfd[0].revents) {
            out_open = storage_drain(out[0], &r->out);
        }
        if (pfd[1].revents) {
            err_open = storage_drain(err[0], &r->err);
        }
    }
    if (timed_out) {
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        continue;
    }
    if (read(st[0], &exec_errno, sizeof exec_errno)
        == (ssize_t) sizeof exec_errno) {
        error_report(exec_errno == ENOENT ? PROBLEM_NOT_SUPPORTED
                                          : PROBLEM_INTERNAL_ERROR,
                     "cannot run '%s': %s", argv[0], strerror(exec_errno));
        goto out;
    }
    if (timed_out) {
        error_report(PROBLEM_TIMEOUT, "'%s' did not finish within %d s; "
                     "killed", argv[0], timeout_ms / 1000);
        goto out;
    }
    r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                   : 128 + WTERMSIG(wstatus);
    LOG_DBG("'%s' exited with status %d", argv[0], r->status);
    rc = 0;

out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0) {
            close(out[i]);
        }
        if (err[i] >= 0) {
            close(err[i]);
        }
        if (st[i] >= 0) {
            close(st[i]);
        }
    }
    if (devnull >= 0) {
        close(devnull);
    }
    return rc;
}

/* The last STORAGE_MSG_LINES non-empty lines of a child's stderr, joined
 * with "; ", for error messages (mount(8) ends with a hint about dmesg
 * after the line that says what went wrong); owned by 'r'. */
#define STORAGE_MSG_LINES 3

static const char *
storage_run_message(struct storage_run *r)
{
    const char *lines[STORAGE_MSG_LINES];
    size_t lens[STORAGE_MSG_LINES];
    size_t n = 0;
    const char *p = r->err.s;
    const char *end = r->err.s + r->err.len;
    struct sbuf m;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        const char *e = nl ? nl : end;
        const char *b = p;

        while (b < e && isspace((unsigned char) *b)) {
            b++;
        }
        while (e > b && isspace((unsigned char) e[-1])) {
            e--;
        }
        if (e > b) {
            if (n == STORAGE_MSG_LINES) {
                memmove(lines, lines + 1, sizeof lines[0] * (n - 1));
                memmove(lens, lens + 1, sizeof lens[0] * (n - 1));
                n--;
            }
            lines[n] = b;
            lens[n++] = (size_t) (e - b);
        }
        p = nl ? nl + 1 : end;
    }
    if (!n) {
        return "(no message)";
    }
    sbuf_init(&m);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            sbuf_addstr(&m, "; ");
        }
        sbuf_add(&m, lines[i], lens[i]);
    }
    free(r->msg);
    r->msg = sbuf_take(&m);
    return r->msg;
}

/* ------------------------------------------------------------------ */
/* Mounts. */

/* Decodes mountinfo's octal escapes (\040 for a blank...) in place. */
static void
storage_unescape(char *s)
{
    char *w = s;

    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0'
            && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *w++ = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8
                           + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/* Looks 'path' up as a mount point in /proc/self/mountinfo.  Returns 1 and
 * (when not NULL) sets '*fstype' and '*source' of the topmost mount there
 * (caller frees), 0 when nothing is mounted there, -1 with an error
 * reported when mountinfo cannot be read. */
static int
storage_mount_lookup(const char *path, char **fstype, char **source)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;

    if (!f) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read "
                     "/proc/self/mountinfo: %s", strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE SRC
         * SUPEROPTS */
        char *save = NULL;
        char *mnt = NULL;
        char *tok = strtok_r(line, " \n", &save);
        char *type = NULL;
        char *src = NULL;

        for (int i = 0; tok && i < 4; i++) {
            tok = strtok_r(NULL, " \n", &save);
        }
        if (!tok) {
            continue;
        }
        mnt = tok;
        while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-")) {
            continue;
        }
        if (tok) {
            type = strtok_r(NULL, " \n", &save);
            src = type ? strtok_r(NULL, " \n", &save) : NULL;
        }
        storage_unescape(mnt);
        if (strcmp(mnt, path)) {
            continue;
        }
        found = 1;                  /* Later lines are mounted on top. */
        if (fstype) {
            free(*fstype);
            *fstype = xstrdup(type ? type : "");
        }
        if (source) {
            free(*source);
            if (src) {
                storage_unescape(src);
            }
            *source = xstrdup(src ? src : "");
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* Capacity of the file system mounted at 'path' as the method result
 * {"totalCapacity","availableCapacity"}, or NULL with an error reported. */
static json_t *
storage_capacity_of(const char *path)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "statvfs '%s': %s", path,
                     strerror(errno));
        return NULL;
    }
    return json_pack("{s:I, s:I}",
                     "totalCapacity",
                     (json_int_t) sv.f_blocks * (json_int_t) sv.f_frsize,
                     "availableCapacity",
                     (json_int_t) sv.f_bavail * (json_int_t) sv.f_frsize);
}

/* An NFS URL "server:/export" split into its parts. */
struct storage_nfs_url {
    char *server;               /* "192.0.2.10", "nfs1", "[2001:db8::1]". */
    char *export;               /* "/export/ps1": absolute, normalised. */
};

/* Frees the parts of 'u' (zeroed or parsed). */
static void
storage_nfs_url_destroy(struct storage_nfs_url *u)
{
    free(u->server);
    free(u->export);
}

/* Parses and checks 'url' ("server:/export"; the server a host name, an
 * IPv4 address or a bracketed IPv6 address).  Returns 0, or -1 with
 * invalid-argument reported. */
static int
storage_nfs_url_parse(const char *url, struct storage_nfs_url *u)
{
    const char *colon;
    size_t n;

    memset(u, 0, sizeof *u);
    if (url[0] == '[') {
        const char *close = strchr(url, ']');

        colon = close && close[1] == ':' ? close + 1 : NULL;
        for (const char *p = url + 1; colon && p < close; p++) {
            if (!strchr("0123456789abcdefABCDEF:.", *p)) {
                colon = NULL;
            }
        }
    } else {
        colon = strchr(url, ':');
        for (const char *p = url; colon && p < colon; p++) {
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789.-", *p)) {
                colon = NULL;
            }
        }
    }
    n = colon ? (size_t) (colon - url) : 0;
    if (!colon || n == 0 || n > 255 || url[0] == '-' || url[0] == '.'
        || strlen(colon + 1) >= PATH_MAX
        || !storage_path_is_normal(colon + 1)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "url",
                           "'url' must be 'server:/export' with a host name "
                           "or address and an absolute, normalised export "
                           "path: '%s'", url);
        return -1;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '{' || *p == '}') {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "url",
                               "'url' must not contain blanks or braces: "
                               "'%s'", url);
            return -1;
        }
    }
    u->server = xstrndup(url, n);
    u->export = xstrdup(colon + 1);
    return 0;
}

/* Expands one word of the mount command template.  Returns the new word
 * (caller frees), or NULL with internal-error reported for an unknown
 * placeholder. */
static char *
storage_expand_word(const char *word, const char *url,
                    const struct storage_nfs_url *u, const char *path)
{
    static const char *const names[] = { "url", "server", "export", "path" };
    const char *values[] = { url, u->server, u->export, path };
    struct sbuf b;
    const char *p = word;

    sbuf_init(&b);
    while (*p) {
        size_t i;

        if (*p != '{') {
            sbuf_add(&b, p++, 1);
            continue;
        }
        for (i = 0; i < ARRAY_SIZE(names); i++) {
            size_t n = strlen(names[i]);

            if (!strncmp(p + 1, names[i], n) && p[1 + n] == '}') {
                sbuf_addstr(&b, values[i]);
                p += n + 2;
                break;
            }
        }
        if (i == ARRAY_SIZE(names)) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "agent.conf: nfs_mount_command word '%s' has an "
                         "unknown placeholder (known: {url} {server} "
                         "{export} {path})", word);
            sbuf_destroy(&b);
            return NULL;
        }
    }
    return sbuf_take(&b);
}

/* Runs the configured mount command for 'url' at 'path'.  Returns 0, or
 * -1 with an error reported. */
static int
storage_run_mount(const char *url, const struct storage_nfs_url *u,
                  const char *path)
{
    char *tmpl = agent_config("nfs_mount_command", STORAGE_DEFAULT_MOUNT);
    char *argv[STORAGE_MAX_ARGS + 1] = { NULL };
    struct storage_run r;
    char *save = NULL;
    int argc = 0;
    int rc = -1;

    for (char *w = strtok_r(tmpl, " \t", &save); w;
         w = strtok_r(NULL, " \t", &save)) {
        if (argc == STORAGE_MAX_ARGS) {
            error_report(PROBLEM_INTERNAL_ERROR, "agent.conf: "
                         "nfs_mount_command has more than %d words",
                         STORAGE_MAX_ARGS);
            goto out;
        }
        argv[argc] = storage_expand_word(w, url, u, path);
        if (!argv[argc]) {
            goto out;
        }
        argc++;
    }
    if (!argc) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "agent.conf: nfs_mount_command is empty");
        goto out;
    }
    LOG_INFO("mounting '%s' at '%s' with '%s'", url, path, argv[0]);
    if (storage_run_argv(argv, STORAGE_MOUNT_TIMEOUT_MS, &r) == 0) {
        if (r.status != 0) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "mounting '%s' at '%s' failed ('%s' exited with "
                         "status %d): %s", url, path, argv[0], r.status,
                         storage_run_message(&r));
        } else {
            rc = 0;
        }
    } else {
        error_prefix("mounting '%s' at '%s': ", url, path);
    }
    storage_run_destroy(&r);

out:
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    free(tmpl);
    return rc;
}

/* storage.mount {"uuid","url","mountPath"}: see proto.h. */
static json_t *
storage_mount(json_t *params)
{
    const char *url = storage_param_str(params, "url");
    const char *path = url ? storage_param_path(params, "mountPath") : NULL;
    struct storage_nfs_url u;
    char *fstype = NULL;
    char *source = NULL;
    json_t *result = NULL;
    int mounted;

    if (!path || storage_nfs_url_parse(url, &u) < 0) {
        return NULL;
    }
    mounted = storage_mount_lookup(path, &fstype, &source);
    if (mounted < 0) {
        goto out;
    }
    if (mounted && !strncmp(fstype, "nfs", 3) && strcmp(source, url)) {
        error_report(PROBLEM_CONFLICT, "'%s' is already mounted from '%s', "
                     "not '%s'", path, source, url);
        goto out;
    }
    if (!mounted) {
        bool made = access(path, F_OK) < 0;

        if (storage_mkdir_p(path) < 0) {
            goto out;
        }
        if (storage_run_mount(url, &u, path) < 0) {
            /* No half-made mount point: the directory made for it goes
             * (rmdir: only while it is empty). */
            if (made) {
                rmdir(path);
            }
            goto out;
        }
        if (storage_mount_lookup(path, NULL, NULL) != 1) {
            error_report(PROBLEM_INTERNAL_ERROR, "the mount command for "
                         "'%s' succeeded but nothing is mounted at '%s'",
                         url, path);
            goto out;
        }
        LOG_INFO("mounted '%s' at '%s'", url, path);
    } else {
        LOG_DBG("'%s' is already mounted at '%s'", url, path);
    }
    result = storage_capacity_of(path);

out:
    free(fstype);
    free(source);
    storage_nfs_url_destroy(&u);
    return result;
}

/* storage.unmount {"uuid","mountPath"}: see proto.h. */
static json_t *
storage_unmount(json_t *params)
{
    const char *path = storage_param_path(params, "mountPath");
    int mounted;

    if (!path) {
        return NULL;
    }
    /* Several mounts may be stacked there (an earlier agent's leftovers):
     * take them all off. */
    for (int i = 0; i < 16; i++) {
        mounted = storage_mount_lookup(path, NULL, NULL);
        if (mounted <= 0) {
            break;
        }
        if (umount2(path, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL) {
            error_report(errno == EBUSY ? PROBLEM_CONFLICT
                                        : PROBLEM_INTERNAL_ERROR,
                         "cannot unmount '%s': %s", path, strerror(errno));
            return NULL;
        }
        LOG_INFO("unmounted '%s'", path);
    }
    if (mounted < 0) {
        return NULL;
    }
    return json_object();
}

/* storage.capacity {"mountPath"}: see proto.h. */
static json_t *
storage_capacity(json_t *params)
{
    const char *path = storage_param_path(params, "mountPath");
    int mounted;

    if (!path) {
        return NULL;
    }
    mounted = storage_mount_lookup(path, NULL, NULL);
    if (mounted < 0) {
        return NULL;
    }
    if (!mounted) {
        error_report(PROBLEM_NOT_FOUND, "nothing is mounted at '%s'", path);
        return NULL;
    }
    return storage_capacity_of(path);
}

/* ------------------------------------------------------------------ */
/* Images and volumes. */

/* Runs `qemu-img info --output=json [-f FORMAT] PATH` and returns the
 * parsed object (caller owns), or NULL with an error reported.  Without
 * 'format' qemu-img probes it; either way only the top image is opened
 * (qemu-img info does not follow the backing chain without
 * --backing-chain). */
static json_t *
storage_qemu_img_info(const char *path, const char *format)
{
    char *argv[8];
    struct storage_run r;
    json_t *info = NULL;
    json_error_t jerr;
    int argc = 0;

    argv[argc++] = (char *) "qemu-img";
    argv[argc++] = (char *) "info";
    argv[argc++] = (char *) "--output=json";
    if (format) {
        argv[argc++] = (char *) "-f";
        argv[argc++] = (char *) format;
    }
    argv[argc++] = (char *) path;
    argv[argc] = NULL;
    if (storage_run_argv(argv, STORAGE_QEMU_IMG_TIMEOUT_MS, &r) < 0) {
        error_prefix("inspecting '%s': ", path);
        goto out;
    }
    if (r.status != 0) {
        error_report(PROBLEM_INVALID_ARGUMENT, "qemu-img cannot read '%s' "
                     "(status %d): %s", path, r.status,
                     storage_run_message(&r));
        goto out;
    }
    info = json_loadb(r.out.s, r.out.len, 0, &jerr);
    if (!json_is_object(info)) {
        error_report(PROBLEM_INTERNAL_ERROR, "qemu-img info '%s': "
                     "unexpected output: %s", path, jerr.text);
        json_decref(info);
        info = NULL;
    }

out:
    storage_run_destroy(&r);
    return info;
}

/* The SHA-256 of the file 'path' as 64 lower-case hex digits into 'out',
 * read in 1 MiB pieces.  Returns 0, or -1 with an error reported. */
static int
storage_sha256_file(const char *path, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t bufsize = 1024 * 1024;
    unsigned char *buf = xmalloc(bufsize);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int rc = -1;

    if (fd < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot open '%s': %s", path,
                     strerror(errno));
        goto out;
    }
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        error_report(PROBLEM_INTERNAL_ERROR, "OpenSSL: cannot start a "
                     "SHA-256 digest");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_report(PROBLEM_INTERNAL_ERROR, "cannot read '%s': %s",
                         path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (!EVP_DigestUpdate(ctx, buf, (size_t) n)) {
            error_report(PROBLEM_INTERNAL_ERROR, "OpenSSL: SHA-256 update "
                         "failed");
            goto out;
        }
    }
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
        error_report(PROBLEM_INTERNAL_ERROR, "OpenSSL: SHA-256 final "
                     "failed");
        goto out;
    }
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    rc = 0;

out:
    if (fd >= 0) {
        close(fd);
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* lstat()s 'path' and requires a regular file (not a symlink).  Returns 0,
 * or -1 with not-found or invalid-argument reported. */
static int
storage_require_file(const char *field, const char *path, struct stat *st)
{
    if (lstat(path, st) < 0) {
        error_report_field(errno == ENOENT ? PROBLEM_NOT_FOUND
                                           : PROBLEM_INTERNAL_ERROR, field,
                           "'%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' is not a regular file", path);
        return -1;
    }
    return 0;
}

/* image.check {"path","format","sha256","maxVirtualSize"}: see proto.h. */
static json_t *
image_check(json_t *params)
{
    const char *path = storage_param_path(params, "path");
    const char *format = path ? storage_param_str(params, "format") : NULL;
    json_t *jsha = json_object_get(params, "sha256");
    json_t *jmax = json_object_get(params, "maxVirtualSize");
    const char *want_sha = json_string_value(jsha);
    json_t *info = NULL;
    json_t *result = NULL;
    json_t *specific;
    const char *got_format;
    json_int_t vsize;
    json_int_t asize;
    json_int_t max;
    char sha[65];
    struct stat st;

    if (!format) {
        return NULL;
    }
    if (strcmp(format, "qcow2") && strcmp(format, "raw")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "format",
                           "'format' must be 'qcow2' or 'raw', not '%s'",
                           format);
        return NULL;
    }
    if (jsha && !json_is_null(jsha)
        && (!want_sha || strlen(want_sha) != 64
            || !str_is_hex(want_sha, 64))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "sha256",
                           "'sha256' must be null or 64 hex digits");
        return NULL;
    }
    if (!json_is_integer(jmax) || json_integer_value(jmax) <= 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "maxVirtualSize",
                           "'maxVirtualSize' must be a positive integer "
                           "(bytes)");
        return NULL;
    }
    max = json_integer_value(jmax);
    if (storage_require_file("path", path, &st) < 0) {
        return NULL;
    }
    info = storage_qemu_img_info(path, NULL);
    if (!info) {
        return NULL;
    }
    got_format = json_string_value(json_object_get(info, "format"));
    vsize = json_integer_value(json_object_get(info, "virtual-size"));
    asize = json_integer_value(json_object_get(info, "actual-size"));
    specific = json_object_get(json_object_get(info, "format-specific"),
                               "data");
    if (!got_format || strcmp(got_format, format)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "image '%s' is in format "
                     "'%s', not the declared '%s'", path,
                     got_format ? got_format : "unknown", format);
        goto out;
    }
    if (json_object_get(info, "backing-filename")
        || json_object_get(info, "full-backing-filename")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "image '%s' has a backing "
                     "file ('%s'); only self-contained images are accepted",
                     path, json_string_value(json_object_get(
                         info, "backing-filename")));
        goto out;
    }
    if (json_object_get(specific, "data-file")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "image '%s' has an external "
                     "data file ('%s'); only self-contained images are "
                     "accepted", path, json_string_value(json_object_get(
                         specific, "data-file")));
        goto out;
    }
    if (vsize <= 0 || vsize > max) {
        error_report(PROBLEM_INVALID_ARGUMENT, "image '%s' has a virtual "
                     "size of %lld bytes, over the limit of %lld bytes",
                     path, (long long) vsize, (long long) max);
        goto out;
    }
    if (storage_sha256_file(path, sha) < 0) {
        goto out;
    }
    if (want_sha && strcasecmp(want_sha, sha)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "image '%s' has SHA-256 %s, "
                     "not the expected %s", path, sha, want_sha);
        goto out;
    }
    result = json_pack("{s:I, s:I, s:s, s:s}", "virtualSize", vsize,
                       "actualSize", asize, "sha256", sha, "format",
                       got_format);
    LOG_INFO("image '%s' checked: %s, %lld bytes virtual", path, got_format,
             (long long) vsize);

out:
    json_decref(info);
    return result;
}

/* fsync()s the file or directory 'path'.  Returns 0, or -1 with an error
 * reported. */
static int
storage_fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot sync '%s': %s", path,
                     strerror(errno));
        rc = -1;
    }
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

/* image.commit {"tmpPath","path"}: see proto.h. */
static json_t *
image_commit(json_t *params)
{
    const char *tmp = storage_param_path(params, "tmpPath");
    const char *path = tmp ? storage_param_path(params, "path") : NULL;
    AUTOFREE char *dir = NULL;
    struct stat st;

    if (!path) {
        return NULL;
    }
    if (lstat(tmp, &st) < 0 && errno == ENOENT
        && lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        /* A repeated commit: the rename happened already. */
        LOG_DBG("'%s' is committed already", path);
        return json_object();
    }
    if (storage_require_file("tmpPath", tmp, &st) < 0
        || storage_mkdir_parent(path) < 0
        || storage_fsync_path(tmp, false) < 0) {
        return NULL;
    }
    if (rename(tmp, path) < 0) {
        error_report(errno == EXDEV ? PROBLEM_INVALID_ARGUMENT
                                    : PROBLEM_INTERNAL_ERROR,
                     "cannot rename '%s' to '%s': %s", tmp, path,
                     errno == EXDEV ? "not on the same file system"
                                    : strerror(errno));
        return NULL;
    }
    dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    if (storage_fsync_path(dir, true) < 0) {
        return NULL;
    }
    LOG_INFO("committed '%s' as '%s'", tmp, path);
    return json_object();
}

/* volume.create {"path","backingFile"}: see proto.h. */
static json_t *
volume_create(json_t *params)
{
    const char *path = storage_param_path(params, "path");
    const char *backing = path ? storage_param_path(params, "backingFile")
                               : NULL;
    char *tmp = NULL;
    char *argv[12];
    struct storage_run r;
    struct stat st;
    int argc = 0;
    int rc;

    if (!backing) {
        return NULL;
    }
    if (!strcmp(path, backing)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "backingFile",
                           "a volume cannot be its own backing file: '%s'",
                           path);
        return NULL;
    }
    if (lstat(path, &st) == 0) {
        json_t *info = NULL;
        const char *b;
        bool same;

        if (!S_ISREG(st.st_mode)) {
            error_report(PROBLEM_CONFLICT, "'%s' exists and is not a "
                         "regular file", path);
            return NULL;
        }
        info = storage_qemu_img_info(path, "qcow2");
        if (!info) {
            error_prefix("volume '%s' exists: ", path);
            return NULL;
        }
        b = json_string_value(json_object_get(info, "backing-filename"));
        same = b && !strcmp(b, backing);
        if (!same) {
            error_report(PROBLEM_CONFLICT, "volume '%s' exists with backing "
                         "file '%s', not '%s'", path, b ? b : "(none)",
                         backing);
        }
        json_decref(info);
        if (!same) {
            return NULL;
        }
        LOG_DBG("volume '%s' exists over '%s'", path, backing);
        return json_pack("{s:s}", "path", path);
    }
    if (storage_require_file("backingFile", backing, &st) < 0
        || storage_mkdir_parent(path) < 0) {
        return NULL;
    }
    /* Created under a temporary name and renamed, so that a crash never
     * leaves a half-written volume under the final name. */
    tmp = xasprintf("%s.creating-%ld", path, (long) getpid());
    argv[argc++] = (char *) "qemu-img";
    argv[argc++] = (char *) "create";
    argv[argc++] = (char *) "-q";
    argv[argc++] = (char *) "-f";
    argv[argc++] = (char *) "qcow2";
    argv[argc++] = (char *) "-b";
    argv[argc++] = (char *) backing;
    argv[argc++] = (char *) "-F";
    argv[argc++] = (char *) "qcow2";
    argv[argc++] = tmp;
    argv[argc] = NULL;
    rc = storage_run_argv(argv, STORAGE_QEMU_IMG_TIMEOUT_MS, &r);
    if (rc == 0 && r.status != 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "qemu-img create '%s' over "
                     "'%s' failed (status %d): %s", path, backing, r.status,
                     storage_run_message(&r));
        rc = -1;
    }
    storage_run_destroy(&r);
    if (rc == 0 && rename(tmp, path) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot rename '%s' to '%s': "
                     "%s", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc < 0) {
        unlink(tmp);
    }
    free(tmp);
    if (rc < 0) {
        return NULL;
    }
    LOG_INFO("volume '%s' created over '%s'", path, backing);
    return json_pack("{s:s}", "path", path);
}

/* volume.delete {"path"}: see proto.h. */
static json_t *
volume_delete(json_t *params)
{
    const char *path = storage_param_path(params, "path");
    struct stat st;

    if (!path) {
        return NULL;
    }
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) {
            return json_object();
        }
        error_report(PROBLEM_INTERNAL_ERROR, "'%s': %s", path,
                     strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "path",
                           "'%s' is a directory, not a volume", path);
        return NULL;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot delete '%s': %s", path,
                     strerror(errno));
        return NULL;
    }
    LOG_INFO("volume '%s' deleted", path);
    return json_object();
}

static const struct agent_method storage_methods[] = {
    { "storage.mount", storage_mount },
    { "storage.unmount", storage_unmount },
    { "storage.capacity", storage_capacity },
    { "image.check", image_check },
    { "image.commit", image_commit },
    { "volume.create", volume_create },
    { "volume.delete", volume_delete },
    { 0 },
};

const struct agent_module storage_module = {
    .name = "storage",
    .methods = storage_methods,
};
