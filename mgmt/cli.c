/* cli.c: "kvmstack <command> ...", the command-line client of the API that
 * "kvmstack serve" answers under /zstack/v1 (see routes.c).
 *
 * DESIGN: one row of 'commands' per API call, named after ZStack's API in
 * kebab case (create-zone, attach-l2-network-to-cluster, ...).  A row names
 * the HTTP method, a path template whose {field} segments are filled from
 * parameters, and where the other parameters go: a {"params": ...} body,
 * an action body {"updateZone": ...}, or the query string.  The parameters
 * come from the server's own resource descriptors (res_all[] and each
 * resource's fields, linked into this binary), so option names, JSON
 * types, required flags and the table a UUID names cannot drift from what
 * the server checks; calls that are not a resource's generic create or
 * update add their own field rows here.  A value that names a row (any
 * *Uuid field, path uuids) may be a name: it is looked up with
 * ?q=name=VALUE before the call and must match exactly one row.  Answers
 * print as aligned tables built from the resource's 'columns', or raw with
 * --json; 202 answers are jobs, polled until they end.
 *
 * Secrets (the login password, host and backup storage passwords) come
 * from the terminal without echo, a pipe, the environment or argv, and go
 * nowhere but the request body: never a file, a log or an error.  Each
 * copy this file owns is wiped, and jansson and libcurl get allocators
 * that wipe memory as they free it, so their copies (JSON strings, the
 * dumped body, curl's send buffer) are wiped too.
 *
 * The session (server URL and session UUID, never the password) lives in
 * ~/.kvmstack/session (directory 0700, file 0600); KVMSTACK_URL and
 * KVMSTACK_SESSION override it. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kvmstack/error.h"
#include "kvmstack/util.h"
#include "resources.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:5000"
#define CLI_DEFAULT_ACCOUNT "admin"
#define CLI_API "/zstack/v1/"
#define CLI_POLL_MS 200         /* Job polling interval. */
#define CLI_SECRET_MAX 4096     /* Longest password line accepted. */
#define CLI_QUERY_KEEP "=!?,:@/" /* Kept as is in q=... conditions. */

struct cli_cmd;

/* A parameter of the command being run. */
struct param {
    const struct field *f;      /* Name, JSON type, flags, choices. */
    const struct resource *ref; /* What a UUID value names, or NULL. */
    char *opt;                  /* Option without "--": "zone-uuid". */
    bool in_path;               /* Fills a {} segment of the path. */
    bool required;              /* Must be given (or defaulted). */
    bool cli_default;           /* f->dflt is applied here, not by mgmt. */
    bool from_stdin;            /* --<opt>-stdin was given (secrets). */
};

/* The state of one run of the CLI. */
struct cli {
    CURL *curl;                 /* One handle, reused for every request. */
    const char *opt_url;        /* --url, when given. */
    char *url;                  /* Server base URL, no trailing '/'. */
    char *session;              /* Session UUID, or NULL. */
    bool session_from_file;     /* 'session' came from the session file. */
    bool json;                  /* --json: print raw answers. */
    bool no_wait;               /* --no-wait: print job locations. */
    bool usage;                 /* The last error is a usage error. */
    bool logging_in;            /* A 401 means a wrong password. */
    const struct cli_cmd *cmd;  /* The command being run. */
    struct param *params;       /* Its parameters... */
    size_t n_params;            /* ...and how many. */
};

/* An HTTP answer. */
struct reply {
    long status;                /* HTTP status. */
    json_t *body;               /* Parsed JSON answer; NULL if empty. */
};

/* Where a command puts the parameters that are not in its path. */
enum cli_send {
    SEND_NONE,                  /* Nowhere: the path says it all. */
    SEND_PARAMS,                /* Body {"params": {...}}. */
    SEND_ACTION,                /* Body {"<action>": {...}}. */
    SEND_QUERY,                 /* Query string ?field=value&... */
};

/* Completes or reshapes 'params' after names became UUIDs; 'given' holds
 * the values as typed.  Returns -1 with an error reported. */
typedef int cli_hook(struct cli *c, json_t *params, json_t *given);

/* Runs a command that the generic runners do not fit; 'argv[0]' is the
 * command name.  Returns -1 with an error reported. */
typedef int cli_run(struct cli *c, const struct cli_cmd *cmd, int argc,
                    char **argv);

/* A command; a row without 'name' is a heading of the help. */
struct cli_cmd {
    const char *name;           /* "create-zone". */
    const char *summary;        /* One line of help, or the heading. */
    const char *alias;          /* "zone create", or NULL. */
    const struct resource *res; /* Fields, columns, what {uuid} names. */
    const char *method;         /* HTTP method. */
    const char *path;           /* Below /zstack/v1; "@" is res->path. */
    enum cli_send send;         /* Where the other parameters go. */
    const char *action;         /* Action key; "%s" stands for res->kind. */
    unsigned mask;              /* Fields of 'res' taken: F_CREATE... */
    const struct field *extra;  /* More parameters, or NULL. */
    const char *args;           /* Positional parameters, by field name. */
    bool query;                 /* A query: conditions, --limit... */
    cli_hook *hook;             /* Runs before the call, or NULL. */
    cli_run *run;               /* Custom runner, or NULL. */
    const char *usage;          /* Usage of a custom runner. */
    const struct resource *out; /* Resource of the answer, if not 'res'. */
};

static void general_help(FILE *out);

/* ---- Memory that holds secrets ---- */

/* Frees 'p' after overwriting every byte malloc gave it. */
static void
wipe_free(void *p)
{
    if (p) {
        secure_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

/* realloc() that wipes the old block (for libcurl). */
static void *
wipe_realloc(void *p, size_t n)
{
    size_t old;
    void *q;

    if (!p) {
        return malloc(n);
    }
    old = malloc_usable_size(p);
    q = malloc(n ? n : 1);
    if (!q) {
        return NULL;
    }
    memcpy(q, p, old < n ? old : n);
    wipe_free(p);
    return q;
}

/* strdup() that returns NULL rather than abort (for libcurl). */
static char *
wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

/* Makes jansson and libcurl wipe what they free.  Call before either
 * allocates anything. */
static int
wipe_allocators_install(void)
{
    json_set_alloc_funcs(malloc, wipe_free);
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free,
                             wipe_realloc, wipe_strdup, calloc)
        != CURLE_OK) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot initialise libcurl");
        return -1;
    }
    return 0;
}

/* Overwrites a JSON string value in place. */
static void
json_wipe_string(json_t *v)
{
    if (json_is_string(v)) {
        secure_wipe((char *) json_string_value(v), json_string_length(v));
    }
}

/* ---- Errors ---- */

/* Reports a usage error (exit status 2) of the current command. */
static int __attribute__((format(printf, 2, 3)))
usage_fail(struct cli *c, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (c->cmd) {
        error_report(PROBLEM_INVALID_ARGUMENT, "%s: %s", c->cmd->name, msg);
    } else {
        error_report(PROBLEM_INVALID_ARGUMENT, "%s", msg);
    }
    free(msg);
    c->usage = true;
    return -1;
}

/* ---- Strings ---- */

/* "vipPortStart" -> "vip-port-start"; caller frees. */
static char *
kebab_from_camel(const char *s)
{
    struct sbuf b;

    sbuf_init(&b);
    for (const char *p = s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            char lower = (char) (*p - 'A' + 'a');

            if (p != s) {
                sbuf_addstr(&b, "-");
            }
            sbuf_add(&b, &lower, 1);
        } else {
            sbuf_add(&b, p, 1);
        }
    }
    return sbuf_take(&b);
}

/* "vip-port-start" -> "vipPortStart"; caller frees. */
static char *
camel_from_kebab(const char *s)
{
    struct sbuf b;

    sbuf_init(&b);
    for (const char *p = s; *p; p++) {
        if (*p == '-' && p[1] >= 'a' && p[1] <= 'z') {
            char upper = (char) (p[1] - 'a' + 'A');

            sbuf_add(&b, &upper, 1);
            p++;
        } else {
            sbuf_add(&b, p, 1);
        }
    }
    return sbuf_take(&b);
}

/* "l3NetworkUuid" -> "L3-NETWORK-UUID"; caller frees. */
static char *
upper_kebab(const char *s)
{
    char *k = kebab_from_camel(s);

    for (char *p = k; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char) (*p - 'a' + 'A');
        }
    }
    return k;
}

/* True if 's' ends with 'suffix'. */
static bool
str_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && !strcmp(s + n - m, suffix);
}

/* Percent-encodes 's' for a URL, keeping unreserved characters and those
 * in 'keep' (may be NULL).  Caller frees. */
static char *
url_escape(const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    struct sbuf b;

    sbuf_init(&b);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                     || (*p >= '0' && *p <= '9') || strchr("-._~", *p)
                     || (keep && strchr(keep, *p));

        if (plain) {
            sbuf_add(&b, p, 1);
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

            sbuf_add(&b, e, 3);
        }
    }
    return sbuf_take(&b);
}

/* Display width of UTF-8 text: one column per code point. */
static size_t
text_width(const char *s)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        n += (*p & 0xc0) != 0x80;
    }
    return n;
}

/* Parses a whole decimal integer; -1 if 's' is anything else. */
static int
parse_int(const char *s, int64_t *out)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(s, &end, 10);
    if (end == s || *end || errno) {
        return -1;
    }
    *out = n;
    return 0;
}

/* Parses a size: bytes, or a number with K, M, G or T (powers of 1024),
 * optionally followed by "B" or "iB": 512M, 1G, 1GiB, 536870912. */
static int
parse_size(const char *s, int64_t *out)
{
    static const char units[] = "KMGT";
    char *end;
    long long n;
    int64_t mult = 1;
    const char *u;

    errno = 0;
    n = strtoll(s, &end, 10);
    if (end == s || errno || n < 0) {
        return -1;
    }
    if (*end && (u = strchr(units, *end & ~0x20)) != NULL) {
        mult = (int64_t) 1 << (10 * (u - units + 1));
        end++;
        if (*end == 'i') {
            end++;
        }
    }
    if ((*end & ~0x20) == 'B') {
        end++;
    }
    if (*end || n > INT64_MAX / mult) {
        return -1;
    }
    *out = n * mult;
    return 0;
}

/* Formats a byte count as 512M when it is an exact multiple. */
static void
format_size(int64_t n, char *buf, size_t size)
{
    static const char units[] = "TGMK";

    for (int i = 0; i < 4; i++) {
        int64_t unit = (int64_t) 1 << (10 * (4 - i));

        if (n > 0 && n % unit == 0) {
            snprintf(buf, size, "%lld%c", (long long) (n / unit), units[i]);
            return;
        }
    }
    snprintf(buf, size, "%lld", (long long) n);
}

/* ---- Reading secrets ---- */

static struct termios tty_saved; /* Terminal state to restore. */
static volatile sig_atomic_t tty_fd = -1; /* Terminal with echo off. */

/* Restores the terminal's echo when a signal ends a password prompt. */
static void
tty_restore_and_die(int sig)
{
    if (tty_fd >= 0) {
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line from 'fd' a byte at a time (so that no stdio buffer
 * keeps a copy) into 'buf' without its line end.  Returns the length, -1
 * at end of input before any byte, -2 if the line does not fit. */
static ssize_t
read_line_fd(int fd, char *buf, size_t size)
{
    size_t n = 0;
    bool any = false;
    bool too_long = false;

    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        any = true;
        if (ch == '\n') {
            break;
        }
        if (n + 1 < size) {
            buf[n++] = ch;
        } else {
            too_long = true;
        }
    }
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    secure_wipe(buf + n, size - n);
    if (too_long) {
        return -2;
    }
    return any ? (ssize_t) n : -1;
}

/* Reads a secret: after 'prompt', from the terminal without echo when
 * standard input is one; otherwise the next line of standard input.
 * Returns a string for secret_free(), or NULL with an error reported. */
static char *
read_secret(const char *prompt, const char *what)
{
    char *buf = xmalloc(CLI_SECRET_MAX);
    ssize_t n;

    if (isatty(STDIN_FILENO)) {
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
        struct termios quiet;
        struct sigaction sa;
        struct sigaction old_int;
        struct sigaction old_term;
        bool own = fd >= 0;

        if (!own) {
            fd = STDIN_FILENO;
        }
        if (write(own ? fd : STDERR_FILENO, prompt, strlen(prompt)) < 0) {
            /* Nothing to do: the read below still works. */
        }
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = tty_restore_and_die;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        if (tcgetattr(fd, &tty_saved) == 0) {
            quiet = tty_saved;
            quiet.c_lflag &= (tcflag_t) ~ECHO;
            quiet.c_lflag |= ECHONL;
            tty_fd = fd;
            tcsetattr(fd, TCSAFLUSH, &quiet);
        }
        n = read_line_fd(fd, buf, CLI_SECRET_MAX);
        if (tty_fd >= 0) {
            tcsetattr(fd, TCSAFLUSH, &tty_saved);
            tty_fd = -1;
        }
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        if (own) {
            close(fd);
        }
    } else {
        n = read_line_fd(STDIN_FILENO, buf, CLI_SECRET_MAX);
    }
    if (n < 0) {
        secure_wipe(buf, CLI_SECRET_MAX);
        free(buf);
        if (n == -2) {
            error_report(PROBLEM_INVALID_ARGUMENT, "the %s is longer than "
                         "%d bytes", what, CLI_SECRET_MAX - 1);
        } else {
            error_report(PROBLEM_INVALID_ARGUMENT, "no %s given: standard "
                         "input ended", what);
        }
        return NULL;
    }
    return buf;
}

/* Takes the secret in environment variable 'name', if set, and wipes it
 * from the environment.  Returns a string for secret_free() or NULL. */
static char *
take_env_secret(const char *name)
{
    char *v = getenv(name);
    char *copy;

    if (!v || !*v) {
        return NULL;
    }
    copy = xstrdup(v);
    secure_wipe(v, strlen(v));
    unsetenv(name);
    return copy;
}

/* ---- Session file ---- */

/* "~/.kvmstack" or "~/.kvmstack/<file>"; caller frees. */
static char *
session_dir_path(const char *file)
{
    const char *home = getenv("HOME");

    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());

        home = pw ? pw->pw_dir : "/";
    }
    return file ? xasprintf("%s/.kvmstack/%s", home, file)
                : xasprintf("%s/.kvmstack", home);
}

/* Loads the session file: {"url", "sessionUuid", "accountName"}, or NULL
 * when there is none. */
static json_t *
session_read(void)
{
    char *path = session_dir_path("session");
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);

    free(path);
    if (!json_is_object(s)) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* Stores 'url', 'session' and 'account' in the session file (directory
 * 0700, file 0600, replaced atomically).  Returns the file's path (caller
 * frees) or NULL with an error reported. */
static char *
session_write(const char *url, const char *session, const char *account)
{
    char *dir = session_dir_path(NULL);
    char *path = session_dir_path("session");
    char *tmp = xasprintf("%s.%ld", path, (long) getpid());
    json_t *obj = json_pack("{s:s, s:s, s:s}", "url", url, "sessionUuid",
                            session, "accountName", account);
    char *text = obj ? json_dumps(obj, JSON_INDENT(2)) : NULL;
    size_t len = text ? strlen(text) : 0;
    int fd = -1;
    bool ok = false;

    if (!text) {
        error_report(PROBLEM_INVALID_ARGUMENT, "cannot encode the session");
        goto out;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot create '%s': %s", dir,
                     strerror(errno));
        goto out;
    }
    if (chmod(dir, 0700) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot chmod '%s': %s", dir,
                     strerror(errno));
        goto out;
    }
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd < 0 || fchmod(fd, 0600) < 0
        || write(fd, text, len) != (ssize_t) len || write(fd, "\n", 1) != 1
        || fsync(fd) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot write '%s': %s", tmp,
                     strerror(errno));
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        fd = -1;
        error_report(PROBLEM_INTERNAL_ERROR, "cannot write '%s': %s", path,
                     strerror(errno));
        goto out;
    }
    fd = -1;
    ok = true;

out:
    if (fd >= 0) {
        close(fd);
    }
    if (!ok) {
        unlink(tmp);
    }
    wipe_free(text);
    json_decref(obj);
    free(tmp);
    free(dir);
    if (!ok) {
        free(path);
        return NULL;
    }
    return path;
}

/* "127.0.0.1:5000/" -> "http://127.0.0.1:5000"; caller frees. */
static char *
url_normalize(const char *url)
{
    char *u = strstr(url, "://") ? xstrdup(url)
                                 : xasprintf("http://%s", url);
    size_t n = strlen(u);

    while (n > 0 && u[n - 1] == '/') {
        u[--n] = '\0';
    }
    return u;
}

/* Chooses the server and the session: --url, then $KVMSTACK_URL, then the
 * session file's, then the default; $KVMSTACK_SESSION, then the file's
 * session when the file is for that server. */
static int
cli_connect(struct cli *c)
{
    json_t *file = session_read();
    const char *file_url = json_string_value(json_object_get(file, "url"));
    const char *file_session = json_string_value(
        json_object_get(file, "sessionUuid"));
    const char *env_url = getenv("KVMSTACK_URL");
    const char *env_session = getenv("KVMSTACK_SESSION");
    char *norm_file_url = file_url ? url_normalize(file_url) : NULL;

    free(c->url);
    free(c->session);
    c->session = NULL;
    c->session_from_file = false;
    if (c->opt_url) {
        c->url = url_normalize(c->opt_url);
    } else if (env_url && *env_url) {
        c->url = url_normalize(env_url);
    } else if (norm_file_url) {
        c->url = xstrdup(norm_file_url);
    } else {
        c->url = xstrdup(CLI_DEFAULT_URL);
    }
    if (env_session && *env_session) {
        c->session = xstrdup(env_session);
    } else if (file_session && norm_file_url
               && !strcmp(norm_file_url, c->url)) {
        c->session = xstrdup(file_session);
        c->session_from_file = true;
    }
    free(norm_file_url);
    json_decref(file);
    if (c->session && !uuid_is_valid(c->session)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "the session '%.64s' is not "
                     "a UUID of 32 hex digits", c->session);
        return -1;
    }
    return 0;
}

/* ---- HTTP ---- */

/* libcurl write callback: appends the answer to an sbuf. */
static size_t
on_body(char *data, size_t size, size_t n, void *aux)
{
    sbuf_add(aux, data, size * n);
    return size * n;
}

/* Sends one request to <url>/zstack/v1/<path> with the session, 'body'
 * (JSON text, may be NULL) and 'method'.  Fills 'r' (the caller frees
 * r->body).  Returns -1 with an error reported if no JSON answer came. */
static int
http_call(struct cli *c, const char *method, const char *path,
          const char *body, struct reply *r)
{
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    struct sbuf answer;
    char *url = xasprintf("%s" CLI_API "%s", c->url, path);
    char *auth = NULL;
    json_error_t jerr;
    CURLcode rc;

    r->status = 0;
    r->body = NULL;
    errbuf[0] = '\0';
    sbuf_init(&answer);
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (c->session) {
        auth = xasprintf("Authorization: OAuth %s", c->session);
        headers = curl_slist_append(headers, auth);
    }
    if (body) {
        headers = curl_slist_append(headers,
                                    "Content-Type: application/json");
    }
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &answer);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE,
                         (long) strlen(body));
    } else {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") ? method : NULL);
    rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    secret_free(auth);
    free(url);
    if (rc != CURLE_OK) {
        error_report(PROBLEM_HOST_UNREACHABLE, "cannot reach %s: %s", c->url,
                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
        sbuf_destroy(&answer);
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (answer.len) {
        r->body = json_loadb(answer.s, answer.len, 0, &jerr);
        if (!r->body) {
            error_report(PROBLEM_PROTOCOL_ERROR, "%s %s: HTTP %ld with an "
                         "answer that is not JSON: %.200s", method, path,
                         r->status, answer.s);
            sbuf_destroy(&answer);
            return -1;
        }
    }
    sbuf_destroy(&answer);
    return 0;
}

/* The parameter of the current command for API field 'name', or NULL. */
static const struct param *
param_by_field(const struct cli *c, const char *name)
{
    for (size_t i = 0; i < c->n_params; i++) {
        if (!strcmp(c->params[i].f->name, name)) {
            return &c->params[i];
        }
    }
    return NULL;
}

/* Reports the error object of an error answer: its details, the option
 * of its field, and a hint for expired sessions. */
static void
report_api_error(struct cli *c, const struct reply *r)
{
    json_t *err = json_object_get(r->body, "error");
    const char *details = json_string_value(json_object_get(err,
                                                            "details"));
    const char *field = json_string_value(json_object_get(err, "field"));
    const char *problem = json_string_value(json_object_get(err,
                                                            "problem"));
    const struct param *p = field ? param_by_field(c, field) : NULL;
    struct sbuf msg;

    sbuf_init(&msg);
    if (!details) {
        details = json_string_value(json_object_get(err, "description"));
    }
    if (details) {
        sbuf_addstr(&msg, details);
    } else {
        sbuf_addf(&msg, "the server answered HTTP %ld", r->status);
    }
    if (p) {
        sbuf_addf(&msg, " (option --%s)", p->opt);
    } else if (field && !strstr(msg.s, field)) {
        sbuf_addf(&msg, " (field '%s')", field);
    }
    if (r->status == 401 && !c->logging_in) {
        sbuf_addstr(&msg, "; log in again with 'kvmstack login'");
    }
    error_report_field(problem ? problem_from_name(problem)
                               : PROBLEM_INTERNAL_ERROR,
                       field, "%s", msg.s);
    sbuf_destroy(&msg);
}

/* Calls the API with the session: 'body' (may be NULL) is sent as JSON.
 * Answers of 400 and above become the reported error.  Returns 0 with 'r'
 * filled (the caller frees r->body) or -1. */
static int
api_call(struct cli *c, const char *method, const char *path, json_t *body,
         struct reply *r)
{
    char *text = NULL;
    int rc;

    r->status = 0;
    r->body = NULL;
    if (!c->session) {
        error_report(PROBLEM_ACCESS_DENIED, "not logged in to %s: run "
                     "'kvmstack login' (or set KVMSTACK_SESSION)", c->url);
        return -1;
    }
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
    }
    rc = http_call(c, method, path, text, r);
    if (text) {
        secure_wipe(text, strlen(text));
        wipe_free(text);
    }
    if (rc < 0) {
        return -1;
    }
    if (r->status >= 400) {
        report_api_error(c, r);
        json_decref(r->body);
        r->body = NULL;
        return -1;
    }
    return 0;
}

/* Sleeps 'ms' milliseconds, resuming after signals. */
static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

/* Polls the job at 'location' (its URL, or a path below /zstack/v1)
 * every CLI_POLL_MS until it ends, printing its progress to stderr when it
 * changes.  Replaces 'r' by the final answer.  Returns -1 with an error
 * reported if the job failed. */
static int
job_wait(struct cli *c, const char *location, struct reply *r)
{
    const char *at = strstr(location, CLI_API);
    char *path = xstrdup(at ? at + strlen(CLI_API) : location);
    char *last = NULL;
    int rc = 0;

    for (;;) {
        const char *progress;
        const char *api;

        json_decref(r->body);
        r->body = NULL;
        if (api_call(c, "GET", path, NULL, r) < 0) {
            rc = -1;
            break;
        }
        if (r->status != 202) {
            break;
        }
        progress = json_string_value(json_object_get(r->body, "progress"));
        api = json_string_value(json_object_get(r->body, "apiName"));
        if (progress && (!last || strcmp(last, progress))) {
            fprintf(stderr, "kvmstack: %s: %s\n", api ? api : "job",
                    progress);
            free(last);
            last = xstrdup(progress);
        }
        sleep_ms(CLI_POLL_MS);
    }
    free(last);
    free(path);
    return rc;
}

/* ---- Names ---- */

/* The resource of SQL table 'table' (the one without a view filter). */
static const struct resource *
resource_of_table(const char *table)
{
    for (const struct resource *const *r = res_all; *r; r++) {
        if (!strcmp((*r)->table, table) && !(*r)->where) {
            return *r;
        }
    }
    return NULL;
}

/* The resource a UUID field names: its 'ref', else the table its name
 * says: "vmInstanceUuid" names vmInstance, "lastHostUuid" a host. */
static const struct resource *
resource_of_field(const struct field *f)
{
    const struct resource *res = NULL;
    char *table;

    if (f->ref) {
        return resource_of_table(f->ref);
    }
    if (!str_ends_with(f->name, "Uuid")) {
        return NULL;
    }
    table = xstrndup(f->name, strlen(f->name) - 4);
    for (char *t = table; *t && !res; t++) {
        if (t == table || (*t >= 'A' && *t <= 'Z')) {
            char first = *t;

            *t = (char) (first >= 'A' && first <= 'Z' ? first - 'A' + 'a'
                                                      : first);
            res = resource_of_table(t);
            *t = first;
        }
    }
    free(table);
    return res;
}

/* Runs GET 'path' and returns its "inventories" (caller frees), or NULL
 * with an error reported. */
static json_t *
api_list(struct cli *c, const char *path)
{
    struct reply r;
    json_t *list;

    if (api_call(c, "GET", path, NULL, &r) < 0) {
        return NULL;
    }
    list = json_incref(json_object_get(r.body, "inventories"));
    json_decref(r.body);
    if (!json_is_array(list)) {
        json_decref(list);
        error_report(PROBLEM_PROTOCOL_ERROR, "GET %s: the answer has no "
                     "\"inventories\" list", path);
        return NULL;
    }
    return list;
}

static char *resolve_name(struct cli *c, const struct resource *res,
                          const char *value);

/* The NICs of VM 'vm' (a UUID) as a JSON list, or NULL. */
static json_t *
vm_nics(struct cli *c, const char *vm)
{
    char *path = xasprintf("%s?q=vmInstanceUuid=%s", vm_nic_resource.path,
                           vm);
    json_t *nics = api_list(c, path);

    free(path);
    return nics;
}

/* A NIC named by its VM: the VM must have exactly one NIC. */
static char *
resolve_nic_of_vm(struct cli *c, const char *value)
{
    char *vm = resolve_name(c, &vm_resource, value);
    json_t *nics;
    char *uuid = NULL;

    if (!vm) {
        return NULL;
    }
    nics = vm_nics(c, vm);
    if (nics && json_array_size(nics) == 1) {
        uuid = xstrdup(json_string_value(json_object_get(
                                             json_array_get(nics, 0),
                                             "uuid")));
    } else if (nics) {
        error_report(PROBLEM_INVALID_ARGUMENT, "VM instance '%s' has %zu "
                     "NICs; give the NIC's UUID", value,
                     json_array_size(nics));
    }
    json_decref(nics);
    free(vm);
    return uuid;
}

/* Turns 'value' into the UUID of a row of 'res': a UUID passes as is, a
 * name must match exactly one row.  Returns the UUID (caller frees) or
 * NULL with an error reported. */
static char *
resolve_name(struct cli *c, const struct resource *res, const char *value)
{
    char *esc;
    char *path;
    struct reply r;
    json_t *rows;
    json_int_t total;
    char *uuid = NULL;

    if (uuid_is_valid(value)) {
        return xstrdup(value);
    }
    if (res == &vm_nic_resource) {
        return resolve_nic_of_vm(c, value);
    }
    if (!res_field(res, "name")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "'%.64s' is not the UUID of "
                     "a %s (32 hex digits)", value, res->label);
        return NULL;
    }
    esc = url_escape(value, NULL);
    path = xasprintf("%s?q=name=%s&limit=2&replyWithCount=true", res->path,
                     esc);
    free(esc);
    if (api_call(c, "GET", path, NULL, &r) < 0) {
        error_prefix("looking up %s '%s': ", res->label, value);
        free(path);
        return NULL;
    }
    free(path);
    rows = json_object_get(r.body, "inventories");
    total = json_integer_value(json_object_get(r.body, "total"));
    if (total == 0 || !json_array_size(rows)) {
        error_report(PROBLEM_NOT_FOUND, "no %s named '%s'", res->label,
                     value);
    } else if (total > 1) {
        error_report(PROBLEM_CONFLICT, "%lld %ss are named '%s'; give the "
                     "UUID", (long long) total, res->label, value);
    } else {
        uuid = xstrdup(json_string_value(json_object_get(
                                             json_array_get(rows, 0),
                                             "uuid")));
    }
    json_decref(r.body);
    return uuid;
}

/* ---- Parameters ---- */

static const struct field uuid_field = {
    .name = "uuid", .type = FT_UUID, .flags = F_REQ,
};

static const struct field tag_fields[] = {
    { .name = "systemTags", .type = FT_STRLIST },
    { .name = "userTags", .type = FT_STRLIST },
    { 0 },
};

/* Help for parameters whose name does not say enough. */
static const struct {
    const char *field;
    const char *text;
} field_help[] = {
    { "stateEvent", "enable or disable" },
    { "strategy", "JustCreate records a stopped VM" },
    { "vm", "a VM whose NIC (the one that fits) takes the rule" },
    { "provider", "network service provider" },
    { "services", "e.g. DHCP,DNS,SNAT,PortForwarding" },
    { "networkServices", "{\"<provider uuid>\":[\"DHCP\",...]}" },
    { "start", "first port" },
    { "end", "last port (default: start)" },
    { "password", "SSH password of the user" },
    { "memorySize", "bytes, or with K/M/G/T: 512M, 1G" },
};

/* Adds field 'f' as a parameter of the current command, unless one of
 * that name exists.  'is_extra' fields are the command's own, whose
 * F_REQ always means required and whose default the CLI applies. */
static void
params_add(struct cli *c, const struct field *f, bool in_path,
           bool is_extra)
{
    const struct cli_cmd *cmd = c->cmd;
    struct param *p;

    for (size_t i = 0; i < c->n_params; i++) {
        if (!strcmp(c->params[i].f->name, f->name)) {
            return;
        }
    }
    c->params = xrealloc(c->params, (c->n_params + 1) * sizeof *c->params);
    p = &c->params[c->n_params++];
    memset(p, 0, sizeof *p);
    p->f = f;
    p->opt = kebab_from_camel(f->name);
    p->in_path = in_path;
    if (f == &uuid_field) {
        p->ref = cmd->res;
    } else if (f->ref) {
        p->ref = resource_of_table(f->ref);
    }
    p->required = (f->flags & F_REQ) && (is_extra || cmd->mask == F_CREATE);
    p->cli_default = is_extra && f->dflt;
    if (!is_extra && cmd->mask == F_CREATE && (f->flags & F_REQ)
        && f->choices && f->choices[0] && !f->choices[1]) {
        /* The only choice of a required field goes without saying. */
        p->cli_default = true;
    }
}

/* The command's own field 'name', or NULL. */
static const struct field *
extra_field(const struct cli_cmd *cmd, const char *name)
{
    for (const struct field *f = cmd->extra; f && f->name; f++) {
        if (!strcmp(f->name, name)) {
            return f;
        }
    }
    return NULL;
}

/* Builds the parameter list of the current command: path segments, the
 * resource's fields under the command's mask, its extra fields, tags. */
static void
params_build(struct cli *c)
{
    const struct cli_cmd *cmd = c->cmd;

    for (const char *t = cmd->path ? strchr(cmd->path, '{') : NULL; t;
         t = strchr(t + 1, '{')) {
        const char *end = strchr(t, '}');
        char *name = xstrndup(t + 1, (size_t) (end - t - 1));
        const struct field *f = extra_field(cmd, name);

        if (!f && !strcmp(name, "uuid")) {
            f = &uuid_field;
        }
        if (!f && cmd->res) {
            f = res_field(cmd->res, name);
        }
        if (ALWAYS(f)) {
            params_add(c, f, true, true);
        }
        free(name);
    }
    if (cmd->mask && cmd->res) {
        for (const struct field *f = cmd->res->fields; f->name; f++) {
            if (f->flags & cmd->mask) {
                params_add(c, f, false, false);
            }
        }
    }
    for (const struct field *f = cmd->extra; f && f->name; f++) {
        params_add(c, f, false, true);
    }
    if (cmd->mask == F_CREATE) {
        for (const struct field *f = tag_fields; f->name; f++) {
            params_add(c, f, false, true);
        }
    }
}

/* Frees the parameter list of the current command. */
static void
params_free(struct cli *c)
{
    for (size_t i = 0; i < c->n_params; i++) {
        free(c->params[i].opt);
    }
    free(c->params);
    c->params = NULL;
    c->n_params = 0;
}

/* The parameter for option 'opt' ("zone-uuid", "zoneUuid", or the short
 * "zone" for zone-uuid and "l3-networks" for l3-network-uuids). */
static struct param *
param_by_opt(struct cli *c, const char *opt)
{
    char *alt[3];
    struct param *found = NULL;

    for (size_t i = 0; i < c->n_params; i++) {
        if (!strcmp(c->params[i].opt, opt)
            || !strcmp(c->params[i].f->name, opt)) {
            return &c->params[i];
        }
    }
    alt[0] = xasprintf("%s-uuid", opt);
    alt[1] = xasprintf("%s-uuids", opt);
    alt[2] = str_ends_with(opt, "s")
             ? xasprintf("%.*s-uuids", (int) strlen(opt) - 1, opt) : NULL;
    for (size_t a = 0; a < 3 && !found; a++) {
        for (size_t i = 0; alt[a] && i < c->n_params && !found; i++) {
            if (!strcmp(c->params[i].opt, alt[a])) {
                found = &c->params[i];
            }
        }
    }
    for (size_t a = 0; a < 3; a++) {
        free(alt[a]);
    }
    return found;
}

/* The default of 'p' as text, or NULL: its field's, or the only choice
 * of a required field. */
static const char *
param_default(const struct param *p)
{
    if (p->f->dflt) {
        return p->f->dflt;
    }
    return p->cli_default && p->f->choices ? p->f->choices[0] : NULL;
}

/* Sets parameter 'p' from the text 'text' by its JSON type.  Lists
 * (comma-separated) add to what earlier options gave. */
static int
param_set(struct cli *c, const struct param *p, const char *text,
          json_t *params)
{
    const struct field *f = p->f;
    json_t *v = NULL;
    json_error_t jerr;
    int64_t n;

    switch (f->type) {
    case FT_INT:
        if ((f->flags & F_SIZE) ? parse_size(text, &n) < 0
                                : parse_int(text, &n) < 0) {
            return usage_fail(c, "option --%s takes %s, not '%.64s'",
                              p->opt, (f->flags & F_SIZE)
                              ? "a size such as 512M or 1G" : "an integer",
                              text);
        }
        v = json_integer(n);
        break;
    case FT_BOOL:
        if (!strcmp(text, "true")) {
            v = json_true();
        } else if (!strcmp(text, "false")) {
            v = json_false();
        } else {
            return usage_fail(c, "option --%s takes true or false, not "
                              "'%.64s'", p->opt, text);
        }
        break;
    case FT_STRLIST: {
        json_t *list = json_object_get(params, f->name);
        char *copy = xstrdup(text);
        char *save = NULL;

        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(params, f->name, list);
        }
        for (char *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            json_t *s;

            while (*tok == ' ') {
                tok++;
            }
            if (!*tok) {
                continue;
            }
            s = json_string(tok);
            if (!s) {
                free(copy);
                return usage_fail(c, "option --%s: not valid UTF-8",
                                  p->opt);
            }
            json_array_append_new(list, s);
        }
        free(copy);
        return 0;
    }
    case FT_OBJ:
        v = json_loads(text, 0, &jerr);
        if (!json_is_object(v)) {
            json_decref(v);
            return usage_fail(c, "option --%s takes a JSON object%s%s",
                              p->opt, v ? "" : ": ", v ? "" : jerr.text);
        }
        break;
    default:
        if (f->choices) {
            for (const char *const *ch = f->choices; *ch; ch++) {
                if (!strcasecmp(*ch, text)) {
                    text = *ch;
                    break;
                }
            }
        }
        v = json_string(text);
        if (!v) {
            return usage_fail(c, "option --%s: not valid UTF-8", p->opt);
        }
        break;
    }
    json_object_set_new(params, f->name, v);
    return 0;
}

/* The metavariable of a parameter in help: ZONE, SIZE, TCP|UDP... */
static char *
param_metavar(const struct param *p)
{
    const struct field *f = p->f;
    struct sbuf b;

    switch (f->type) {
    case FT_INT:
        return xstrdup((f->flags & F_SIZE) ? "SIZE" : "N");
    case FT_BOOL:
        return xstrdup("");
    case FT_UUID:
        return p->ref ? upper_kebab(p->ref->kind) : xstrdup("UUID");
    case FT_STRLIST:
        if (p->ref) {
            char *k = upper_kebab(p->ref->kind);
            char *s = xasprintf("%s,...", k);

            free(k);
            return s;
        }
        return xstrdup("A,B,...");
    case FT_OBJ:
        return xstrdup("JSON");
    default:
        if (!f->choices) {
            return strcmp(f->name, "name") ? xstrdup("TEXT")
                                           : xstrdup("NAME");
        }
        sbuf_init(&b);
        for (const char *const *ch = f->choices; *ch; ch++) {
            sbuf_addf(&b, "%s%s", ch == f->choices ? "" : "|", *ch);
        }
        return sbuf_take(&b);
    }
}

/* The name of positional parameter 'p' in a usage line. */
static char *
param_argname(const struct param *p)
{
    if (p->f->type == FT_STR && !p->f->choices) {
        return upper_kebab(p->f->name);
    }
    return param_metavar(p);
}

/* Reads the secrets of the command: --<opt>-stdin reads a line of
 * standard input; a missing required one is asked on the terminal. */
static int
params_read_secrets(struct cli *c, json_t *params)
{
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];
        const char *host;
        const char *user;
        char *prompt;
        char *secret;
        json_t *v;

        if (!(p->f->flags & F_SECRET)) {
            continue;
        }
        if (!p->from_stdin
            && (json_object_get(params, p->f->name) || !p->required
                || !isatty(STDIN_FILENO))) {
            continue;
        }
        host = json_string_value(json_object_get(params, "managementIp"));
        if (!host) {
            host = json_string_value(json_object_get(params, "hostname"));
        }
        user = json_string_value(json_object_get(params, "username"));
        prompt = host ? xasprintf("%s for %s@%s: ", p->opt,
                                  user ? user : "root", host)
                      : xasprintf("%s: ", p->opt);
        secret = read_secret(prompt, p->opt);
        free(prompt);
        if (!secret) {
            return -1;
        }
        v = json_string(secret);
        secret_free(secret);
        if (!v) {
            return usage_fail(c, "the %s is not valid UTF-8", p->opt);
        }
        json_object_set_new(params, p->f->name, v);
    }
    return 0;
}

/* Wipes the secret values in 'params'. */
static void
params_wipe(struct cli *c, json_t *params)
{
    for (size_t i = 0; i < c->n_params; i++) {
        if (c->params[i].f->flags & F_SECRET) {
            json_wipe_string(json_object_get(params, c->params[i].f->name));
        }
    }
}

/* Handles the options that every command takes.  Returns 1 if 'opt' (with
 * its value in 'value' or the next argument) was one, 0 if not, -1 on
 * error. */
static int
global_option(struct cli *c, const char *opt, const char *value, int argc,
              char **argv, int *i)
{
    if (!strcmp(opt, "json") || !strcmp(opt, "no-wait")) {
        if (value) {
            return usage_fail(c, "option --%s takes no value", opt);
        }
        if (!strcmp(opt, "json")) {
            c->json = true;
        } else {
            c->no_wait = true;
        }
        return 1;
    }
    if (!strcmp(opt, "url")) {
        if (!value) {
            if (*i + 1 >= argc) {
                return usage_fail(c, "option --url needs a value");
            }
            value = argv[++*i];
        }
        c->opt_url = value;
        return 1;
    }
    return 0;
}

/* Parses the arguments of a generic command into 'params'.  Sets '*help'
 * for --help.  'argv[0]' is the command. */
static int
args_parse(struct cli *c, int argc, char **argv, json_t *params,
           bool *help)
{
    const struct cli_cmd *cmd = c->cmd;
    char *args = xstrdup(cmd->args ? cmd->args : "");
    char *save = NULL;
    char *next_pos = strtok_r(args, " ", &save);
    bool options = true;
    int rc = -1;

    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        char *eq;
        char *opt;
        const char *value = NULL;
        struct param *p;
        int g;

        if (!options || a[0] != '-' || !a[1]) {
            if (!next_pos) {
                usage_fail(c, "unexpected argument '%.64s'", a);
                goto out;
            }
            p = param_by_opt(c, next_pos);
            if (!ALWAYS(p) || param_set(c, p, a, params) < 0) {
                goto out;
            }
            next_pos = strtok_r(NULL, " ", &save);
            continue;
        }
        if (!strcmp(a, "--")) {
            options = false;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            rc = 0;
            goto out;
        }
        if (a[1] != '-') {
            usage_fail(c, "unknown option '%.64s'", a);
            goto out;
        }
        opt = xstrdup(a + 2);
        eq = strchr(opt, '=');
        if (eq) {
            *eq = '\0';
            value = a + 2 + (eq - opt) + 1;
        }
        p = param_by_opt(c, opt);
        if (!p) {
            g = global_option(c, opt, value, argc, argv, &i);
            if (g) {
                free(opt);
                if (g < 0) {
                    goto out;
                }
                continue;
            }
        }
        if (!p && str_ends_with(opt, "-stdin")) {
            opt[strlen(opt) - 6] = '\0';
            p = param_by_opt(c, opt);
            if (p && (p->f->flags & F_SECRET) && !value) {
                p->from_stdin = true;
                free(opt);
                continue;
            }
            strcat(opt, "-stdin");
            p = NULL;
        }
        if (!p && !strncmp(opt, "no-", 3) && !value) {
            p = param_by_opt(c, opt + 3);
            if (p && p->f->type == FT_BOOL) {
                free(opt);
                if (param_set(c, p, "false", params) < 0) {
                    goto out;
                }
                continue;
            }
            p = NULL;
        }
        if (!p) {
            usage_fail(c, "unknown option '--%s'", opt);
            free(opt);
            goto out;
        }
        free(opt);
        if (p->f->type == FT_BOOL && !value) {
            value = "true";
            if (i + 1 < argc && (!strcmp(argv[i + 1], "true")
                                 || !strcmp(argv[i + 1], "false"))) {
                value = argv[++i];
            }
        }
        if (!value) {
            if (i + 1 >= argc) {
                usage_fail(c, "option --%s needs a value", p->opt);
                goto out;
            }
            value = argv[++i];
        }
        if (param_set(c, p, value, params) < 0) {
            goto out;
        }
        if (p->f->flags & F_SECRET) {
            /* Hide it from ps and /proc/<pid>/cmdline too. */
            secure_wipe((char *) value, strlen(value));
        }
    }
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];

        if (p->cli_default && !json_object_get(params, p->f->name)
            && param_set(c, p, param_default(p), params) < 0) {
            goto out;
        }
    }
    rc = 0;

out:
    free(args);
    return rc;
}

/* The position (1, 2...) of parameter 'p' among the command's
 * positional arguments, or 0. */
static int
param_position(const struct cli *c, const struct param *p)
{
    const char *args = c->cmd->args ? c->cmd->args : "";
    size_t len = strlen(p->f->name);
    int pos = 1;

    for (const char *a = args; *a; pos++) {
        size_t n = strcspn(a, " ");

        if (n == len && !strncmp(a, p->f->name, n)) {
            return pos;
        }
        a += n;
        a += *a == ' ';
    }
    return 0;
}

/* Checks that every required parameter was given. */
static int
params_check_required(struct cli *c, json_t *params)
{
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];
        int pos;

        if (!p->required || json_object_get(params, p->f->name)) {
            continue;
        }
        if (p->f->flags & F_SECRET) {
            return usage_fail(c, "missing --%s (or --%s-stdin)", p->opt,
                              p->opt);
        }
        pos = param_position(c, p);
        if (pos) {
            char *name = param_argname(p);

            usage_fail(c, "missing %s (argument %d, or --%s)", name, pos,
                       p->opt);
            free(name);
            return -1;
        }
        return usage_fail(c, "missing required option --%s", p->opt);
    }
    return 0;
}

/* Replaces names by UUIDs in every parameter that names a row. */
static int
params_resolve(struct cli *c, json_t *params)
{
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];
        json_t *v = json_object_get(params, p->f->name);
        size_t j;
        json_t *e;

        if (!p->ref || !v) {
            continue;
        }
        if (json_is_string(v)) {
            char *uuid = resolve_name(c, p->ref, json_string_value(v));

            if (!uuid) {
                return -1;
            }
            json_object_set_new(params, p->f->name, json_string(uuid));
            free(uuid);
        }
        json_array_foreach(v, j, e) {
            char *uuid = resolve_name(c, p->ref, json_string_value(e));

            if (!uuid) {
                return -1;
            }
            json_array_set_new(v, j, json_string(uuid));
            free(uuid);
        }
    }
    return 0;
}

/* ---- Output ---- */

/* Prints 'v' as indented JSON for scripts. */
static void
print_json(json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

/* True for strings, numbers, booleans and null. */
static bool
json_is_scalar(json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* The text of a value in a table; 'f' (may be NULL) is its field.
 * Caller frees. */
static char *
cell_text(json_t *v, const struct field *f)
{
    char buf[32];
    struct sbuf b;
    size_t i;
    json_t *e;

    if (!v || json_is_null(v)) {
        return xstrdup("-");
    }
    if (json_is_string(v)) {
        return xstrdup(json_string_value(v));
    }
    if (json_is_integer(v)) {
        if (f && (f->flags & F_SIZE)) {
            format_size(json_integer_value(v), buf, sizeof buf);
            return xstrdup(buf);
        }
        return xasprintf("%lld", (long long) json_integer_value(v));
    }
    if (json_is_real(v)) {
        return xasprintf("%g", json_real_value(v));
    }
    if (json_is_boolean(v)) {
        return xstrdup(json_is_true(v) ? "true" : "false");
    }
    if (json_is_array(v)) {
        if (!json_array_size(v)) {
            return xstrdup("-");
        }
        sbuf_init(&b);
        json_array_foreach(v, i, e) {
            char *t = json_is_scalar(e) ? cell_text(e, NULL)
                                        : json_dumps(e, JSON_COMPACT);

            sbuf_addf(&b, "%s%s", i ? "," : "", t);
            free(t);
        }
        return sbuf_take(&b);
    }
    return json_dumps(v, JSON_COMPACT);
}

/* Rows of text cells, 'ncol' per row, for aligned printing. */
struct cells {
    char **cell;                /* Row-major. */
    size_t ncol;
    size_t nrow;
};

/* Appends a row of t->ncol cells; takes the strings of 'row'. */
static void
cells_add(struct cells *t, char *const *row)
{
    t->cell = xrealloc(t->cell, (t->nrow + 1) * t->ncol * sizeof *t->cell);
    memcpy(&t->cell[t->nrow * t->ncol], row, t->ncol * sizeof *row);
    t->nrow++;
}

/* Prints 'cells' in columns two spaces apart, and frees them. */
static void
cells_print(struct cells *t)
{
    size_t *width = xcalloc(t->ncol, sizeof *width);

    for (size_t r = 0; r < t->nrow; r++) {
        for (size_t k = 0; k < t->ncol; k++) {
            size_t w = text_width(t->cell[r * t->ncol + k]);

            width[k] = w > width[k] ? w : width[k];
        }
    }
    for (size_t r = 0; r < t->nrow; r++) {
        for (size_t k = 0; k < t->ncol; k++) {
            const char *s = t->cell[r * t->ncol + k];

            fputs(s, stdout);
            if (k + 1 < t->ncol) {
                for (size_t w = text_width(s); w < width[k] + 2; w++) {
                    fputc(' ', stdout);
                }
            }
            free(t->cell[r * t->ncol + k]);
        }
        fputc('\n', stdout);
    }
    free(width);
    free(t->cell);
    t->cell = NULL;
    t->nrow = 0;
}

/* Adds the fields of 'obj' to 'cells' as (name, value) rows; nested
 * objects and lists of objects get "key.sub" and "key[i].sub" names. */
static void
cells_add_fields(struct cells *t, const char *prefix, json_t *obj,
                 const struct resource *res)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        char *name = prefix ? xasprintf("%s.%s", prefix, key)
                            : xstrdup(key);
        const struct field *f = res && !prefix ? res_field(res, key) : NULL;
        bool nested = false;
        size_t i;
        json_t *e;

        json_array_foreach(v, i, e) {
            nested |= !json_is_scalar(e);
        }
        if (json_is_object(v) && json_object_size(v)) {
            cells_add_fields(t, name, v, NULL);
        } else if (nested) {
            json_array_foreach(v, i, e) {
                char *sub = xasprintf("%s[%zu]", name, i);

                if (json_is_object(e)) {
                    cells_add_fields(t, sub, e, NULL);
                    free(sub);
                } else {
                    char *row[2] = { sub, cell_text(e, NULL) };

                    cells_add(t, row);
                }
            }
        } else {
            char *row[2] = { xstrdup(name), cell_text(v, f) };

            cells_add(t, row);
        }
        free(name);
    }
}

/* Prints one object as a two-column "field value" table. */
static void
print_fields(json_t *obj, const struct resource *res)
{
    struct cells t = { NULL, 2, 0 };

    cells_add_fields(&t, NULL, obj, res);
    cells_print(&t);
}

/* Prints inventories as a table with the columns of 'res'. */
static void
print_table(json_t *rows, const struct resource *res)
{
    struct cells t = { NULL, 0, 0 };
    char **row;
    size_t i;
    json_t *inv;

    if (!res || !res->columns) {
        json_array_foreach(rows, i, inv) {
            if (i) {
                fputc('\n', stdout);
            }
            print_fields(inv, res);
        }
        return;
    }
    while (res->columns[t.ncol]) {
        t.ncol++;
    }
    row = xcalloc(t.ncol, sizeof *row);
    for (size_t k = 0; k < t.ncol; k++) {
        row[k] = xstrdup(res->columns[k]);
    }
    cells_add(&t, row);
    json_array_foreach(rows, i, inv) {
        for (size_t k = 0; k < t.ncol; k++) {
            const char *col = res->columns[k];

            row[k] = cell_text(json_object_get(inv, col),
                               res_field(res, col));
        }
        cells_add(&t, row);
    }
    free(row);
    cells_print(&t);
}

/* Prints an answer: raw with --json; a list of inventories as a table; one
 * inventory (or any other object) as a field table; nothing for {}. */
static void
print_answer(struct cli *c, json_t *body, const struct resource *res)
{
    json_t *list = json_object_get(body, "inventories");
    json_t *inv = json_object_get(body, "inventory");

    if (c->json) {
        if (body) {
            print_json(body);
        } else {
            printf("{}\n");
        }
    } else if (!body || (json_is_object(body) && !json_object_size(body))) {
        return;
    } else if (json_is_array(list)) {
        print_table(list, res);
    } else if (json_is_object(inv)) {
        print_fields(inv, res);
    } else if (json_object_size(body) == 1
               && json_is_integer(json_object_get(body, "total"))) {
        printf("%lld\n", (long long) json_integer_value(
                   json_object_get(body, "total")));
    } else {
        print_fields(body, res);
    }
}

/* Calls the API and prints the answer; a 202 job is waited for (or its
 * location printed with --no-wait). */
static int
call_and_print(struct cli *c, const char *method, const char *path,
               json_t *body, const struct resource *res)
{
    struct reply r;
    const char *location;

    if (api_call(c, method, path, body, &r) < 0) {
        return -1;
    }
    location = json_string_value(json_object_get(r.body, "location"));
    if (r.status == 202 && location) {
        if (c->no_wait) {
            if (c->json) {
                print_json(r.body);
            } else {
                printf("%s\n", location);
            }
            json_decref(r.body);
            return 0;
        }
        if (job_wait(c, location, &r) < 0) {
            return -1;
        }
    }
    print_answer(c, r.body, res);
    json_decref(r.body);
    return 0;
}

/* ---- Help ---- */

/* Prints 'text' with the cursor at column 'indent', wrapped at 79
 * columns with continuation lines indented by 'indent'. */
static void
print_wrapped(FILE *out, const char *text, int indent)
{
    int col = indent;

    for (const char *p = text; *p;) {
        int len = (int) strcspn(p, " ");

        if (col > indent && col + 1 + len > 79) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, (size_t) len, out);
        col += len;
        p += len;
        while (*p == ' ') {
            p++;
        }
    }
    fputc('\n', out);
}

/* The extra help of a parameter, or NULL. */
static const char *
param_help_text(const struct param *p)
{
    for (size_t i = 0; i < ARRAY_SIZE(field_help); i++) {
        if (!strcmp(field_help[i].field, p->f->name)) {
            return field_help[i].text;
        }
    }
    return NULL;
}

/* Prints "usage: kvmstack CMD ARGS [OPTIONS]" and the summary. */
static void
cmd_usage(const struct cli *c, FILE *out)
{
    const struct cli_cmd *cmd = c->cmd;
    char *args = xstrdup(cmd->args ? cmd->args : "");
    char *save = NULL;
    struct sbuf b;

    sbuf_init(&b);
    sbuf_addf(&b, "kvmstack %s", cmd->name);
    if (cmd->usage && *cmd->usage) {
        sbuf_addf(&b, " %s", cmd->usage);
    }
    for (char *a = strtok_r(args, " ", &save); a && !cmd->usage;
         a = strtok_r(NULL, " ", &save)) {
        const struct param *p = param_by_field(c, a);
        char *name = p ? param_argname(p) : upper_kebab(a);

        sbuf_addf(&b, p && !p->required ? " [%s]" : " %s", name);
        free(name);
    }
    free(args);
    if (cmd->query) {
        sbuf_addstr(&b, " [CONDITION...] [OPTIONS]");
    } else if (!cmd->usage) {
        sbuf_addstr(&b, " [OPTIONS]");
    }
    fputs("usage: ", out);
    print_wrapped(out, b.s, 7);
    sbuf_destroy(&b);
    sbuf_init(&b);
    sbuf_addstr(&b, cmd->summary);
    if (cmd->method && cmd->path) {
        sbuf_addf(&b, " (%s " CLI_API "%s%s)", cmd->method,
                  cmd->path[0] == '@' ? cmd->res->path : "",
                  cmd->path + (cmd->path[0] == '@'));
    }
    sbuf_addstr(&b, ".");
    print_wrapped(out, b.s, 0);
    sbuf_destroy(&b);
}

/* The help of a query command: condition syntax, fields, options. */
static void
query_help(const struct cli *c, FILE *out)
{
    const struct resource *res = c->cmd->res;
    int col = 2;

    fprintf(out, "\nA CONDITION is FIELD=VALUE, or with !=, >, >=, <, <=, "
            "?= (in a comma list),\n!?=, ~= (SQL LIKE), !~=; "
            "'FIELD is null' and 'FIELD not null' also work.\n"
            "A bare word means name=WORD (uuid=WORD for a UUID).  Values "
            "of *Uuid fields\nmay be names.  Fields of %s:\n  uuid",
            res->label);
    col += 4;
    for (const struct field *f = res->fields; f->name; f++) {
        if ((f->flags & (F_HIDDEN | F_NOCOL)) || f->type == FT_OBJ
            || f->type == FT_STRLIST) {
            continue;
        }
        if (col + 2 + (int) strlen(f->name) > 78) {
            fprintf(out, ",\n  ");
            col = 2;
        } else {
            fprintf(out, ", ");
            col += 2;
        }
        fprintf(out, "%s", f->name);
        col += (int) strlen(f->name);
    }
    fprintf(out, "\n\nOptions:\n"
            "  --limit N            at most N rows (default 1000)\n"
            "  --start N            skip the first N rows\n"
            "  --sort [+|-]FIELD    order by FIELD (default createDate)\n"
            "  --count              print only the number of matches\n"
            "  --json               print the raw JSON answer\n");
}

/* Prints the help of the current command: usage and every option with
 * its type, whether it is required and its default. */
static void
cmd_help(const struct cli *c, FILE *out)
{
    bool has_url = false;

    cmd_usage(c, out);
    if (c->cmd->query) {
        query_help(c, out);
        return;
    }
    if (c->n_params) {
        fprintf(out, "\nOptions:\n");
    }
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];
        char *mv = param_metavar(p);
        char *left = xasprintf("--%s%s%s", p->opt, *mv ? " " : "", mv);
        const char *text = param_help_text(p);
        struct sbuf d;

        sbuf_init(&d);
        has_url |= !strcmp(p->f->name, "url");
        if (p->required && !p->cli_default) {
            sbuf_addstr(&d, "required");
        }
        if (p->f->type == FT_UUID && p->ref == &vm_nic_resource) {
            sbuf_addf(&d, "%sUUID of a VM NIC, or name of a VM with one "
                      "NIC", d.len ? "; " : "");
        } else if (p->f->type == FT_UUID && p->ref) {
            sbuf_addf(&d, "%sUUID or name of a %s", d.len ? "; " : "",
                      p->ref->label);
        } else if (p->f->type == FT_STRLIST) {
            sbuf_addf(&d, "%scomma-separated%s%s%s", d.len ? "; " : "",
                      p->ref ? " UUIDs or names of " : "",
                      p->ref ? p->ref->label : "", p->ref ? "s" : "");
        } else if (p->f->type == FT_INT && (p->f->min || p->f->max)
                   && !(p->f->flags & F_SIZE)) {
            sbuf_addf(&d, "%s%lld..%lld", d.len ? "; " : "",
                      (long long) p->f->min, (long long) p->f->max);
        }
        if (text) {
            sbuf_addf(&d, "%s%s", d.len ? "; " : "", text);
        }
        if (param_default(p) && (p->cli_default
                                 || (c->cmd->mask == F_CREATE
                                     && !p->required))) {
            sbuf_addf(&d, "%sdefault %s", d.len ? "; " : "",
                      param_default(p));
        }
        if (p->f->flags & F_SECRET) {
            sbuf_addf(&d, "%sor --%s-stdin; asked for on a terminal",
                      d.len ? "; " : "", p->opt);
        }
        if (!d.len) {
            fprintf(out, "  %s\n", left);
        } else {
            if (strlen(left) > 30) {
                fprintf(out, "  %s\n  %-30s ", left, "");
            } else {
                fprintf(out, "  %-30s ", left);
            }
            print_wrapped(out, d.s, 33);
        }
        sbuf_destroy(&d);
        free(left);
        free(mv);
    }
    if (c->cmd->run) {
        return;
    }
    fprintf(out, "\nEvery command also takes --json (print the raw JSON "
            "answer) and --no-wait\n(print a job's location instead of "
            "waiting for it).  Options ending in -uuid\nor -uuids also "
            "work without it: --zone ZONE1, --l3-networks L3.\n");
    if (has_url) {
        fprintf(out, "Here --url is the field above; give the server's URL "
                "before the command:\nkvmstack --url URL %s ...\n",
                c->cmd->name);
    }
}

/* ---- Generic runners ---- */

/* Replaces the {field} segments of the command's path by (escaped)
 * values of 'params', removing them from 'params'.  Caller frees. */
static char *
path_build(const struct cli_cmd *cmd, json_t *params)
{
    const char *t = cmd->path;
    struct sbuf b;

    sbuf_init(&b);
    if (t[0] == '@') {
        sbuf_addstr(&b, cmd->res->path);
        t++;
    }
    while (*t) {
        const char *end = *t == '{' ? strchr(t, '}') : NULL;
        char *name;
        char *text;
        char *esc;
        json_t *v;

        if (!end) {
            sbuf_add(&b, t++, 1);
            continue;
        }
        name = xstrndup(t + 1, (size_t) (end - t - 1));
        v = json_object_get(params, name);
        text = json_is_string(v) ? xstrdup(json_string_value(v))
                                 : cell_text(v, NULL);
        esc = url_escape(text, NULL);
        sbuf_addstr(&b, esc);
        json_object_del(params, name);
        free(esc);
        free(text);
        free(name);
        t = end + 1;
    }
    return sbuf_take(&b);
}

/* Appends 'params' to 'path' as a query string. */
static char *
path_add_query(char *path, json_t *params)
{
    struct sbuf b;
    const char *key;
    json_t *v;
    char sep = strchr(path, '?') ? '&' : '?';

    sbuf_init(&b);
    sbuf_addstr(&b, path);
    free(path);
    json_object_foreach(params, key, v) {
        char *text = cell_text(v, NULL);
        char *esc = url_escape(text, NULL);

        sbuf_addf(&b, "%c%s=%s", sep, key, esc);
        sep = '&';
        free(esc);
        free(text);
    }
    return sbuf_take(&b);
}

/* A copy of 'params' without secrets, for hooks' messages. */
static json_t *
params_given(struct cli *c, json_t *params)
{
    json_t *copy = json_deep_copy(params);

    for (size_t i = 0; i < c->n_params; i++) {
        if (c->params[i].f->flags & F_SECRET) {
            json_object_del(copy, c->params[i].f->name);
        }
    }
    return copy;
}

/* Runs a command of the table: parse, look names up, call, print. */
static int
run_generic(struct cli *c, const struct cli_cmd *cmd, int argc,
            char **argv)
{
    json_t *params = json_object();
    json_t *given = NULL;
    json_t *body = NULL;
    char *path = NULL;
    char *action = NULL;
    bool help = false;
    int rc = -1;

    if (args_parse(c, argc, argv, params, &help) < 0) {
        goto out;
    }
    if (help) {
        cmd_help(c, stdout);
        rc = 0;
        goto out;
    }
    if (params_read_secrets(c, params) < 0
        || params_check_required(c, params) < 0 || cli_connect(c) < 0) {
        goto out;
    }
    given = params_given(c, params);
    if (params_resolve(c, params) < 0
        || (cmd->hook && cmd->hook(c, params, given) < 0)) {
        goto out;
    }
    for (size_t i = 0; i < c->n_params; i++) {
        const struct param *p = &c->params[i];

        if (p->in_path && !json_object_get(params, p->f->name)) {
            usage_fail(c, "missing required option --%s", p->opt);
            goto out;
        }
    }
    path = path_build(cmd, params);
    switch (cmd->send) {
    case SEND_PARAMS:
        body = json_pack("{s:O}", "params", params);
        break;
    case SEND_ACTION:
        action = xasprintf(cmd->action, cmd->res->kind);
        body = json_pack("{s:O}", action, params);
        break;
    case SEND_QUERY:
        path = path_add_query(path, params);
        break;
    case SEND_NONE:
        break;
    }
    rc = call_and_print(c, cmd->method, path, body,
                        cmd->out ? cmd->out : cmd->res);

out:
    params_wipe(c, params);
    json_decref(body);
    json_decref(params);
    json_decref(given);
    free(action);
    free(path);
    return rc;
}

static const char *const query_ops[] = {
    "!?=", "?=", "!~=", "~=", "!=", ">=", "<=", "=", ">", "<",
};

/* Turns a query argument into a condition for ?q=: "name=VM1" as is, a
 * bare word into name=WORD (uuid=WORD for a UUID), kebab field names into
 * camelCase, and names into UUIDs for "=" and "!=" on *Uuid fields.
 * Returns the condition (caller frees) or NULL with an error reported. */
static char *
condition_build(struct cli *c, const char *arg)
{
    const struct resource *res = c->cmd->res;
    const char *op = NULL;
    size_t at = strlen(arg);
    const char *sp = strchr(arg, ' ');
    const struct field *f;
    const struct resource *ref = NULL;
    char *name;
    char *cond;
    const char *value;

    if (sp && (!strcmp(sp, " is null") || !strcmp(sp, " not null"))) {
        name = xstrndup(arg, (size_t) (sp - arg));
        cond = camel_from_kebab(name);
        free(name);
        name = xasprintf("%s%s", cond, sp);
        free(cond);
        return name;
    }
    for (size_t i = 0; i < ARRAY_SIZE(query_ops); i++) {
        const char *hit = strstr(arg, query_ops[i]);

        if (hit && ((size_t) (hit - arg) < at
                    || ((size_t) (hit - arg) == at && op
                        && strlen(query_ops[i]) > strlen(op)))) {
            at = (size_t) (hit - arg);
            op = query_ops[i];
        }
    }
    if (!op) {
        return xasprintf("%s=%s", uuid_is_valid(arg) ? "uuid" : "name", arg);
    }
    if (at == 0) {
        usage_fail(c, "'%.64s' is not a condition such as name=VM1", arg);
        return NULL;
    }
    name = xstrndup(arg, at);
    if (strchr(name, '-')) {
        char *camel = camel_from_kebab(name);

        free(name);
        name = camel;
    }
    value = arg + at + strlen(op);
    f = res_field(res, name);
    if (f && f->type == FT_UUID) {
        ref = resource_of_field(f);
    } else if (!strcmp(name, "uuid")) {
        ref = res;
    }
    if (ref && (!strcmp(op, "=") || !strcmp(op, "!=")) && *value
        && !uuid_is_valid(value)) {
        char *uuid = resolve_name(c, ref, value);

        if (!uuid) {
            free(name);
            return NULL;
        }
        cond = xasprintf("%s%s%s", name, op, uuid);
        free(uuid);
    } else {
        cond = xasprintf("%s%s%s", name, op, value);
    }
    free(name);
    return cond;
}

/* Runs query-<resource> [CONDITION...] [--limit N] [--start N]
 * [--sort [+|-]FIELD] [--count]. */
static int
run_query(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv)
{
    json_t *conds = json_array();
    json_t *args = json_array();
    struct sbuf path;
    char sep = '?';
    bool options = true;
    int rc = -1;
    size_t i;
    json_t *v;

    sbuf_init(&path);
    sbuf_addstr(&path, cmd->res->path);
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        char *opt;
        char *eq;
        const char *value = NULL;
        int g;

        if (!options || a[0] != '-' || !a[1]) {
            json_array_append_new(conds, json_string(a));
            continue;
        }
        if (!strcmp(a, "--")) {
            options = false;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cmd_help(c, stdout);
            rc = 0;
            goto out;
        }
        if (a[1] != '-') {
            usage_fail(c, "unknown option '%.64s'", a);
            goto out;
        }
        opt = xstrdup(a + 2);
        eq = strchr(opt, '=');
        if (eq) {
            *eq = '\0';
            value = a + 2 + (eq - opt) + 1;
        }
        g = global_option(c, opt, value, argc, argv, &k);
        if (g) {
            free(opt);
            if (g < 0) {
                goto out;
            }
            continue;
        }
        if (!strcmp(opt, "count")) {
            json_array_append_new(args, json_string("count=true"));
            free(opt);
            continue;
        }
        if (strcmp(opt, "limit") && strcmp(opt, "start")
            && strcmp(opt, "sort")) {
            usage_fail(c, "unknown option '--%s'", opt);
            free(opt);
            goto out;
        }
        if (!value) {
            if (k + 1 >= argc) {
                usage_fail(c, "option --%s needs a value", opt);
                free(opt);
                goto out;
            }
            value = argv[++k];
        }
        if (!strcmp(opt, "sort")) {
            bool sign = value[0] == '+' || value[0] == '-';
            char *camel = camel_from_kebab(value + sign);
            char *esc = url_escape(camel, NULL);

            json_array_append_new(args, json_sprintf("sort=%s%s",
                                                     value[0] == '-'
                                                     ? "-" : "", esc));
            free(esc);
            free(camel);
        } else {
            int64_t n;

            if (parse_int(value, &n) < 0 || n < 0) {
                usage_fail(c, "option --%s takes a number, not '%.64s'",
                           opt, value);
                free(opt);
                goto out;
            }
            json_array_append_new(args, json_sprintf("%s=%lld", opt,
                                                     (long long) n));
        }
        free(opt);
    }
    if (cli_connect(c) < 0) {
        goto out;
    }
    json_array_foreach(conds, i, v) {
        char *cond = condition_build(c, json_string_value(v));
        char *esc;

        if (!cond) {
            goto out;
        }
        esc = url_escape(cond, CLI_QUERY_KEEP);
        sbuf_addf(&path, "%cq=%s", sep, esc);
        sep = '&';
        free(esc);
        free(cond);
    }
    json_array_foreach(args, i, v) {
        sbuf_addf(&path, "%c%s", sep, json_string_value(v));
        sep = '&';
    }
    rc = call_and_print(c, "GET", path.s, NULL, cmd->res);

out:
    sbuf_destroy(&path);
    json_decref(conds);
    json_decref(args);
    return rc;
}

/* ---- Hooks ---- */

/* attach-network-service-to-l3-network: --provider P --services A,B
 * becomes {"networkServices": {"<P's uuid>": ["A", "B"]}}. */
static int
network_services_hook(struct cli *c, json_t *params, json_t *given)
{
    json_t *services = json_object_get(params, "services");
    const char *provider = json_string_value(json_object_get(params,
                                                             "provider"));
    json_t *map;

    (void) given;
    if (json_object_get(params, "networkServices")) {
        if (services) {
            return usage_fail(c, "give --services or --network-services, "
                              "not both");
        }
        json_object_del(params, "provider");
        return 0;
    }
    if (!json_array_size(services)) {
        return usage_fail(c, "missing --services, e.g. --services "
                          "DHCP,DNS,SNAT,PortForwarding");
    }
    map = json_object();
    json_object_set(map, provider, services);
    json_object_set_new(params, "networkServices", map);
    json_object_del(params, "provider");
    json_object_del(params, "services");
    return 0;
}

/* create-port-forwarding-rule --vm VM: the VM's NIC that is not on the
 * VIP's own L3 network and has an address. */
static int
pf_create_hook(struct cli *c, json_t *params, json_t *given)
{
    const char *vm = json_string_value(json_object_get(params, "vm"));
    const char *vm_name = json_string_value(json_object_get(given, "vm"));
    const char *vip = json_string_value(json_object_get(params, "vipUuid"));
    char *path;
    json_t *vips;
    json_t *nics = NULL;
    const char *vip_l3;
    json_t *pick = NULL;
    size_t n = 0;
    size_t i;
    json_t *nic;
    int rc = -1;

    if (!vm) {
        return 0;
    }
    if (json_object_get(params, "vmNicUuid")) {
        return usage_fail(c, "give --vm or --vm-nic-uuid, not both");
    }
    path = xasprintf("%s/%s", vip_resource.path, vip);
    vips = api_list(c, path);
    free(path);
    if (!vips) {
        return -1;
    }
    vip_l3 = json_string_value(json_object_get(json_array_get(vips, 0),
                                               "l3NetworkUuid"));
    nics = vm_nics(c, vm);
    if (!nics) {
        goto out;
    }
    json_array_foreach(nics, i, nic) {
        const char *l3 = json_string_value(json_object_get(nic,
                                                           "l3NetworkUuid"));

        if (json_string_value(json_object_get(nic, "ip"))
            && (!vip_l3 || !l3 || strcmp(l3, vip_l3))) {
            pick = nic;
            n++;
        }
    }
    if (n > 1) {
        error_report(PROBLEM_INVALID_ARGUMENT, "VM instance '%s' has %zu "
                     "NICs that could take the rule; give --vm-nic-uuid",
                     vm_name, n);
        goto out;
    }
    if (n == 0) {
        error_report(PROBLEM_INVALID_ARGUMENT, "VM instance '%s' has no NIC "
                     "with an address outside the VIP's L3 network",
                     vm_name);
        goto out;
    }
    json_object_set(params, "vmNicUuid", json_object_get(pick, "uuid"));
    json_object_del(params, "vm");
    rc = 0;

out:
    json_decref(vips);
    json_decref(nics);
    return rc;
}

/* attach-port-forwarding-rule --vm VM: the VM's NIC among the rule's
 * candidate NICs. */
static int
pf_attach_hook(struct cli *c, json_t *params, json_t *given)
{
    const char *vm = json_string_value(json_object_get(params, "vm"));
    const char *vm_name = json_string_value(json_object_get(given, "vm"));
    const char *rule = json_string_value(json_object_get(params,
                                                         "ruleUuid"));
    const char *rule_name = json_string_value(json_object_get(given,
                                                              "ruleUuid"));
    char *path;
    json_t *nics;
    json_t *pick = NULL;
    size_t n = 0;
    size_t i;
    json_t *nic;

    if (vm && json_object_get(params, "vmNicUuid")) {
        return usage_fail(c, "give --vm or --vm-nic-uuid, not both");
    }
    if (!vm) {
        if (!json_object_get(params, "vmNicUuid")) {
            return usage_fail(c, "missing the NIC: give --vm-nic-uuid NIC "
                              "or --vm VM");
        }
        return 0;
    }
    path = xasprintf("%s/%s/vm-instances/candidate-nics",
                     pf_rule_resource.path, rule);
    nics = api_list(c, path);
    free(path);
    if (!nics) {
        return -1;
    }
    json_array_foreach(nics, i, nic) {
        const char *owner = json_string_value(json_object_get(
                                                  nic, "vmInstanceUuid"));

        if (owner && !strcmp(owner, vm)) {
            pick = nic;
            n++;
        }
    }
    if (n > 1) {
        error_report(PROBLEM_INVALID_ARGUMENT, "VM instance '%s' has %zu "
                     "NICs that rule '%s' can take; give --vm-nic-uuid",
                     vm_name, n, rule_name);
    } else if (n == 0) {
        error_report(PROBLEM_INVALID_ARGUMENT, "VM instance '%s' has no NIC "
                     "that rule '%s' can be attached to (see "
                     "get-port-forwarding-rule-candidate-nics)", vm_name,
                     rule_name);
    }
    if (n != 1) {
        json_decref(nics);
        return -1;
    }
    json_object_set(params, "vmNicUuid", json_object_get(pick, "uuid"));
    json_object_del(params, "vm");
    json_decref(nics);
    return 0;
}

/* ---- Session and job commands ---- */

/* Parses the options of the custom commands: --json, --url, --help, and
 * at most 'max_pos' positional arguments into 'pos'.  Returns 1 for
 * --help, 0 or -1. */
static int
simple_args(struct cli *c, int argc, char **argv, const char **pos,
            int max_pos, bool *flag, const char *flag_name)
{
    int n = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq;
        char *opt;
        int g;

        if (a[0] != '-' || !a[1]) {
            if (n >= max_pos) {
                return usage_fail(c, "unexpected argument '%.64s'", a);
            }
            pos[n++] = a;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return 1;
        }
        if (flag && a[1] == '-' && !strcmp(a + 2, flag_name)) {
            *flag = true;
            continue;
        }
        if (a[1] != '-') {
            return usage_fail(c, "unknown option '%.64s'", a);
        }
        eq = strchr(a, '=');
        opt = eq ? xstrndup(a + 2, (size_t) (eq - a - 2)) : xstrdup(a + 2);
        g = global_option(c, opt, eq ? eq + 1 : NULL, argc, argv, &i);
        if (!g) {
            usage_fail(c, "unknown option '--%s'", opt);
        }
        free(opt);
        if (g <= 0) {
            return -1;
        }
    }
    return 0;
}

/* login [--url URL] [ACCOUNT]: sends the SHA-512 digest of the password
 * (as ZStack's clients do) and saves the session. */
static int
run_login(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *account = CLI_DEFAULT_ACCOUNT;
    char digest[129];
    char *password;
    char *prompt;
    char *text;
    char *file;
    json_t *body;
    json_t *inv;
    struct reply r;
    const char *until;
    int rc;

    (void) cmd;
    rc = simple_args(c, argc, argv, &account, 1, NULL, NULL);
    if (rc) {
        if (rc > 0) {
            cmd_help(c, stdout);
        }
        return rc > 0 ? 0 : -1;
    }
    if (cli_connect(c) < 0) {
        return -1;
    }
    c->logging_in = true;
    password = take_env_secret("KVMSTACK_PASSWORD");
    if (!password) {
        prompt = xasprintf("Password for %s at %s: ", account, c->url);
        password = read_secret(prompt, "password");
        free(prompt);
        if (!password) {
            return -1;
        }
    }
    sha512_hex(password, strlen(password), digest);
    secret_free(password);
    body = json_pack("{s:{s:s, s:s}}", "logInByAccount", "accountName",
                     account, "password", digest);
    secure_wipe(digest, sizeof digest);
    if (!body) {
        return usage_fail(c, "the account name is not valid UTF-8");
    }
    text = json_dumps(body, JSON_COMPACT);
    json_wipe_string(json_object_get(json_object_get(body, "logInByAccount"),
                                     "password"));
    json_decref(body);
    rc = http_call(c, "PUT", "accounts/login", text, &r);
    secure_wipe(text, strlen(text));
    wipe_free(text);
    if (rc < 0) {
        return -1;
    }
    if (r.status >= 400) {
        report_api_error(c, &r);
        json_decref(r.body);
        return -1;
    }
    inv = json_object_get(r.body, "inventory");
    if (!json_string_value(json_object_get(inv, "uuid"))) {
        json_decref(r.body);
        error_report(PROBLEM_PROTOCOL_ERROR, "the login answer has no "
                     "session UUID");
        return -1;
    }
    file = session_write(c->url, json_string_value(json_object_get(inv,
                                                                    "uuid")),
                         account);
    if (!file) {
        json_decref(r.body);
        return -1;
    }
    if (c->json) {
        print_json(r.body);
    } else {
        until = json_string_value(json_object_get(inv, "expiredDate"));
        printf("Logged in to %s as '%s'%s%s; session saved in %s.\n",
               c->url, account, until ? " until " : "", until ? until : "",
               file);
    }
    free(file);
    json_decref(r.body);
    return 0;
}

/* logout: revokes the session and removes the session file. */
static int
run_logout(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv)
{
    char *path;
    char *file;
    struct reply r;
    int rc = simple_args(c, argc, argv, NULL, 0, NULL, NULL);

    (void) cmd;
    if (rc) {
        if (rc > 0) {
            cmd_help(c, stdout);
        }
        return rc > 0 ? 0 : -1;
    }
    if (cli_connect(c) < 0) {
        return -1;
    }
    if (!c->session) {
        error_report(PROBLEM_INVALID_ARGUMENT, "not logged in to %s",
                     c->url);
        return -1;
    }
    path = xasprintf("accounts/sessions/%s", c->session);
    rc = http_call(c, "DELETE", path, NULL, &r);
    free(path);
    if (rc == 0 && r.status >= 400 && r.status != 401) {
        report_api_error(c, &r);
        rc = -1;
    }
    if (rc == 0 && c->session_from_file) {
        file = session_dir_path("session");
        if (unlink(file) < 0 && errno != ENOENT) {
            error_report(PROBLEM_INTERNAL_ERROR, "cannot remove '%s': %s",
                         file, strerror(errno));
            rc = -1;
        }
        free(file);
    }
    if (rc == 0) {
        printf("Logged out of %s%s.\n", c->url, r.status == 401
               ? " (the session had already ended)" : "");
    }
    json_decref(r.body);
    return rc;
}

/* update-account --password: changes the password of the session's
 * account.  Asks for the current and the new password on the terminal,
 * or reads them as two lines of standard input. */
static int
run_update_account(struct cli *c, const struct cli_cmd *cmd, int argc,
                   char **argv)
{
    bool password = false;
    char *old_pw = NULL;
    char *new_pw = NULL;
    char *again = NULL;
    json_t *accounts = NULL;
    json_t *body = NULL;
    char *path = NULL;
    const char *uuid;
    int rc;

    (void) cmd;
    rc = simple_args(c, argc, argv, NULL, 0, &password, "password");
    if (rc) {
        if (rc > 0) {
            cmd_help(c, stdout);
        }
        return rc > 0 ? 0 : -1;
    }
    if (!password) {
        return usage_fail(c, "nothing to change: give --password");
    }
    if (cli_connect(c) < 0 || !(accounts = api_list(c, "accounts"))) {
        return -1;
    }
    uuid = json_string_value(json_object_get(json_array_get(accounts, 0),
                                             "uuid"));
    rc = -1;
    if (!uuid) {
        error_report(PROBLEM_PROTOCOL_ERROR, "the server named no account "
                     "for this session");
        goto out;
    }
    old_pw = read_secret("Current password: ", "current password");
    new_pw = old_pw ? read_secret("New password: ", "new password") : NULL;
    if (!new_pw) {
        goto out;
    }
    if (isatty(STDIN_FILENO)) {
        again = read_secret("New password again: ", "new password");
        if (!again) {
            goto out;
        }
        if (strcmp(again, new_pw)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "the new passwords "
                         "differ");
            goto out;
        }
    }
    body = json_pack("{s:{s:s, s:s}}", "updateAccount", "password", new_pw,
                     "oldPassword", old_pw);
    if (!body) {
        usage_fail(c, "the password is not valid UTF-8");
        goto out;
    }
    path = xasprintf("accounts/%s/actions", uuid);
    rc = call_and_print(c, "PUT", path, body, NULL);

out:
    if (body) {
        json_t *p = json_object_get(body, "updateAccount");

        json_wipe_string(json_object_get(p, "password"));
        json_wipe_string(json_object_get(p, "oldPassword"));
    }
    json_decref(body);
    json_decref(accounts);
    secret_free(old_pw);
    secret_free(new_pw);
    secret_free(again);
    free(path);
    return rc;
}

/* query-api-job JOB / wait-api-job JOB, where JOB is a job's UUID or its
 * location. */
static int
run_job(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv)
{
    const char *job = NULL;
    const char *slash;
    char *path;
    struct reply r;
    int rc = simple_args(c, argc, argv, &job, 1, NULL, NULL);

    if (rc) {
        if (rc > 0) {
            cmd_help(c, stdout);
        }
        return rc > 0 ? 0 : -1;
    }
    if (!job) {
        return usage_fail(c, "missing the job's UUID or location");
    }
    slash = strrchr(job, '/');
    if (slash) {
        job = slash + 1;
    }
    if (!uuid_is_valid(job)) {
        return usage_fail(c, "'%.64s' is not a job UUID", job);
    }
    if (cli_connect(c) < 0) {
        return -1;
    }
    path = xasprintf("api-jobs/%s", job);
    r.body = NULL;
    if (!strcmp(cmd->name, "wait-api-job")) {
        rc = job_wait(c, path, &r);
    } else {
        rc = api_call(c, "GET", path, NULL, &r);
    }
    free(path);
    if (rc == 0) {
        print_answer(c, r.body, NULL);
    }
    json_decref(r.body);
    return rc;
}

/* ---- The commands ---- */

static const char *const state_events[] = { "enable", "disable", NULL };
static const char *const protocols[] = { "TCP", "UDP", NULL };

static const struct field state_fields[] = {
    { .name = "stateEvent", .type = FT_STR, .flags = F_REQ,
      .choices = state_events },
    { 0 },
};

#define REF_FIELD(NAME, TABLE, FLAGS)                                      \
    { .name = NAME, .type = FT_UUID, .flags = FLAGS, .ref = TABLE }

static const struct field ps_cluster_fields[] = {
    REF_FIELD("primaryStorageUuid", "primaryStorage", F_REQ),
    REF_FIELD("clusterUuid", "cluster", F_REQ),
    { 0 },
};

static const struct field bs_zone_fields[] = {
    REF_FIELD("backupStorageUuid", "backupStorage", F_REQ),
    REF_FIELD("zoneUuid", "zone", F_REQ),
    { 0 },
};

static const struct field l2_cluster_fields[] = {
    REF_FIELD("l2NetworkUuid", "l2Network", F_REQ),
    REF_FIELD("clusterUuid", "cluster", F_REQ),
    { 0 },
};

static const struct field ip_range_fields[] = {
    REF_FIELD("l3NetworkUuid", "l3Network", F_REQ),
    { .name = "name", .type = FT_STR, .flags = F_REQ },
    { .name = "description", .type = FT_STR },
    { .name = "startIp", .type = FT_STR, .flags = F_REQ },
    { .name = "endIp", .type = FT_STR, .flags = F_REQ },
    { .name = "netmask", .type = FT_STR, .flags = F_REQ },
    { .name = "gateway", .type = FT_STR, .flags = F_REQ },
    { 0 },
};

static const struct field ip_range_cidr_fields[] = {
    REF_FIELD("l3NetworkUuid", "l3Network", F_REQ),
    { .name = "name", .type = FT_STR, .flags = F_REQ },
    { .name = "description", .type = FT_STR },
    { .name = "networkCidr", .type = FT_STR, .flags = F_REQ },
    { .name = "gateway", .type = FT_STR },
    { 0 },
};

static const struct field dns_fields[] = {
    REF_FIELD("l3NetworkUuid", "l3Network", F_REQ),
    { .name = "dns", .type = FT_STR, .flags = F_REQ },
    { 0 },
};

static const struct field network_service_fields[] = {
    REF_FIELD("l3NetworkUuid", "l3Network", F_REQ),
    { .name = "provider", .type = FT_UUID, .ref = "networkServiceProvider",
      .dflt = "VirtualRouter" },
    { .name = "services", .type = FT_STRLIST },
    { .name = "networkServices", .type = FT_OBJ },
    { 0 },
};

static const struct field vip_port_fields[] = {
    { .name = "protocolType", .type = FT_STR, .flags = F_REQ,
      .choices = protocols },
    { .name = "start", .type = FT_INT, .flags = F_REQ, .min = 1,
      .max = 65535 },
    { .name = "end", .type = FT_INT, .min = 1, .max = 65535 },
    { 0 },
};

static const struct field trust_fields[] = {
    { .name = "sshHostKeyFingerprint", .type = FT_STR },
    { 0 },
};

static const struct field rekey_fields[] = {
    { .name = "password", .type = FT_STR, .flags = F_SECRET },
    { 0 },
};

static const char *const stop_types[] = { "grace", "cold", NULL };

static const struct field stop_fields[] = {
    { .name = "type", .type = FT_STR, .choices = stop_types },
    { 0 },
};

static const struct field pf_create_fields[] = {
    REF_FIELD("vm", "vmInstance", 0),
    { 0 },
};

static const struct field pf_attach_fields[] = {
    REF_FIELD("ruleUuid", "portForwardingRule", F_REQ),
    REF_FIELD("vmNicUuid", "vmNic", 0),
    REF_FIELD("vm", "vmInstance", 0),
    { 0 },
};

static const struct field pf_rule_fields[] = {
    REF_FIELD("ruleUuid", "portForwardingRule", F_REQ),
    { 0 },
};

#define CMD_CREATE(NAME, ALIAS, RES, PATH, SUMMARY)                        \
    { .name = NAME, .summary = SUMMARY, .alias = ALIAS, .res = &RES,       \
      .method = "POST", .path = PATH, .send = SEND_PARAMS,                 \
      .mask = F_CREATE, .args = "name" }
#define CMD_QUERY(NAME, ALIAS, RES, SUMMARY)                               \
    { .name = NAME, .summary = SUMMARY, .alias = ALIAS, .res = &RES,       \
      .method = "GET", .path = "@", .query = true, .run = run_query }
#define CMD_UPDATE(NAME, RES, SUMMARY)                                     \
    { .name = NAME, .summary = SUMMARY, .res = &RES, .method = "PUT",      \
      .path = "@/{uuid}/actions", .send = SEND_ACTION,                     \
      .action = "update%s", .mask = F_UPDATE, .args = "uuid" }
#define CMD_STATE(NAME, RES, SUMMARY)                                      \
    { .name = NAME, .summary = SUMMARY, .res = &RES, .method = "PUT",      \
      .path = "@/{uuid}/actions", .send = SEND_ACTION,                     \
      .action = "change%sState", .extra = state_fields,                    \
      .args = "uuid stateEvent" }
#define CMD_DELETE(NAME, ALIAS, RES, SUMMARY)                              \
    { .name = NAME, .summary = SUMMARY, .alias = ALIAS, .res = &RES,       \
      .method = "DELETE", .path = "@/{uuid}", .args = "uuid" }
#define CMD_VM_ACTION(NAME, ACTION, SUMMARY)                               \
    { .name = NAME, .summary = SUMMARY, .res = &vm_resource,               \
      .method = "PUT", .path = "@/{uuid}/actions", .send = SEND_ACTION,    \
      .action = ACTION, .args = "uuid" }
#define CMD_LINK(NAME, METHOD, SEND, RES, PATH, EXTRA, ARGS, SUMMARY)      \
    { .name = NAME, .summary = SUMMARY, .res = &RES, .method = METHOD,     \
      .path = PATH, .send = SEND, .extra = EXTRA, .args = ARGS }

static const struct cli_cmd commands[] = {
    { .summary = "Session and jobs" },
    { .name = "login", .run = run_login, .usage = "[--url URL] [ACCOUNT]",
      .summary = "Log in (as admin by default) and save the session in "
      "~/.kvmstack/session; the password comes from the terminal, "
      "$KVMSTACK_PASSWORD or standard input" },
    { .name = "logout", .run = run_logout, .usage = "",
      .summary = "Revoke the session and remove the session file" },
    { .name = "update-account", .run = run_update_account,
      .usage = "--password",
      .summary = "Change the password of the session's account (asked "
      "for on the terminal, or two lines of standard input: current, new)"
    },
    { .name = "query-api-job", .alias = "job show", .run = run_job,
      .usage = "JOB", .summary = "Show a job (UUID or location): its "
      "progress, or its answer once it ended" },
    { .name = "wait-api-job", .alias = "job wait", .run = run_job,
      .usage = "JOB", .summary = "Wait for a job (UUID or location) and "
      "print its answer" },

    { .summary = "Zones" },
    CMD_CREATE("create-zone", "zone create", zone_resource, "@",
               "Create a zone"),
    CMD_QUERY("query-zone", "zone list", zone_resource, "Query zones"),
    CMD_UPDATE("update-zone", zone_resource, "Rename or describe a zone"),
    CMD_STATE("change-zone-state", zone_resource, "Enable or disable a "
              "zone"),
    CMD_DELETE("delete-zone", "zone delete", zone_resource,
               "Delete a zone"),

    { .summary = "Clusters" },
    CMD_CREATE("create-cluster", "cluster create", cluster_resource, "@",
               "Create a cluster of KVM hosts in a zone"),
    CMD_QUERY("query-cluster", "cluster list", cluster_resource,
              "Query clusters"),
    CMD_UPDATE("update-cluster", cluster_resource, "Rename or describe a "
               "cluster"),
    CMD_STATE("change-cluster-state", cluster_resource, "Enable or disable "
              "a cluster"),
    CMD_DELETE("delete-cluster", NULL, cluster_resource,
               "Delete a cluster"),

    { .summary = "Hosts" },
    CMD_CREATE("add-kvm-host", "host add", host_resource, "hosts/kvm",
               "Add a KVM host (a job)"),
    CMD_QUERY("query-host", "host list", host_resource, "Query hosts"),
    CMD_UPDATE("update-host", host_resource, "Change a host's name, "
               "description or SSH port"),
    CMD_STATE("change-host-state", host_resource, "Enable or disable a "
              "host"),
    CMD_DELETE("delete-host", NULL, host_resource, "Delete a host"),
    { .name = "update-kvm-host", .alias = "host update",
      .summary = "Change a KVM host's name, description or SSH port; with "
      "--password(-stdin), install mgmt's key again (a job)",
      .res = &host_resource, .method = "PUT", .path = "@/{uuid}/actions",
      .send = SEND_ACTION, .action = "updateKVMHost", .mask = F_UPDATE,
      .extra = rekey_fields, .args = "uuid" },
    { .name = "reconnect-host", .alias = "host reconnect",
      .summary = "Drop a host's connection and connect again now",
      .res = &host_resource, .method = "PUT", .path = "@/{uuid}/actions",
      .send = SEND_ACTION, .action = "reconnectHost", .args = "uuid" },
    { .name = "trust-host-key", .alias = "host trust-key",
      .summary = "Accept a host's new SSH host key (the given fingerprint, "
      "or the key it presents now)", .res = &host_resource,
      .method = "PUT", .path = "@/{uuid}/actions", .send = SEND_ACTION,
      .action = "trustHostKey", .extra = trust_fields, .args = "uuid" },

    { .summary = "Primary storage" },
    CMD_CREATE("add-nfs-primary-storage", NULL, primary_storage_resource,
               "primary-storage/nfs", "Add NFS primary storage to a zone"),
    CMD_QUERY("query-primary-storage", NULL, primary_storage_resource,
              "Query primary storage"),
    CMD_UPDATE("update-primary-storage", primary_storage_resource,
               "Rename or describe primary storage"),
    CMD_STATE("change-primary-storage-state", primary_storage_resource,
              "Enable or disable primary storage"),
    CMD_DELETE("delete-primary-storage", NULL, primary_storage_resource,
               "Delete primary storage"),
    CMD_LINK("attach-primary-storage-to-cluster", "POST", SEND_PARAMS,
             primary_storage_resource,
             "clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}",
             ps_cluster_fields, "primaryStorageUuid clusterUuid",
             "Attach primary storage to a cluster"),
    CMD_LINK("detach-primary-storage-from-cluster", "DELETE", SEND_NONE,
             primary_storage_resource,
             "clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}",
             ps_cluster_fields, "primaryStorageUuid clusterUuid",
             "Detach primary storage from a cluster"),

    { .summary = "Backup storage" },
    CMD_CREATE("add-sftp-backup-storage", NULL, backup_storage_resource,
               "backup-storage/sftp", "Add SFTP backup storage (a job)"),
    CMD_QUERY("query-backup-storage", NULL, backup_storage_resource,
              "Query backup storage"),
    CMD_UPDATE("update-backup-storage", backup_storage_resource,
               "Change backup storage's name, description or SSH port"),
    CMD_STATE("change-backup-storage-state", backup_storage_resource,
              "Enable or disable backup storage"),
    CMD_DELETE("delete-backup-storage", NULL, backup_storage_resource,
               "Delete backup storage"),
    CMD_LINK("attach-backup-storage-to-zone", "POST", SEND_PARAMS,
             backup_storage_resource,
             "zones/{zoneUuid}/backup-storage/{backupStorageUuid}",
             bs_zone_fields, "backupStorageUuid zoneUuid",
             "Attach backup storage to a zone"),
    CMD_LINK("detach-backup-storage-from-zone", "DELETE", SEND_NONE,
             backup_storage_resource,
             "zones/{zoneUuid}/backup-storage/{backupStorageUuid}",
             bs_zone_fields, "backupStorageUuid zoneUuid",
             "Detach backup storage from a zone"),

    { .summary = "Images" },
    CMD_CREATE("add-image", "image add", image_resource, "@",
               "Register an image on backup storage"),
    CMD_QUERY("query-image", "image list", image_resource, "Query images"),
    CMD_UPDATE("update-image", image_resource, "Change an image's name, "
               "description, platform or guest OS type"),
    CMD_STATE("change-image-state", image_resource, "Enable or disable an "
              "image"),
    CMD_DELETE("delete-image", NULL, image_resource, "Delete an image"),

    { .summary = "L2 networks" },
    CMD_CREATE("create-l2-no-vlan-network", NULL, l2_novlan_resource, "@/"
               "no-vlan", "Create an untagged L2 network"),
    CMD_CREATE("create-l2-vlan-network", NULL, l2_vlan_resource, "@/vlan",
               "Create an 802.1Q VLAN L2 network"),
    CMD_CREATE("create-l2-vxlan-network", NULL, l2_vxlan_resource,
               "@/vxlan", "Create a VXLAN L2 network"),
    CMD_QUERY("query-l2-network", "l2-network list", l2_resource,
              "Query L2 networks of every type"),
    CMD_UPDATE("update-l2-network", l2_resource, "Rename or describe an L2 "
               "network"),
    CMD_DELETE("delete-l2-network", NULL, l2_resource,
               "Delete an L2 network"),
    CMD_LINK("attach-l2-network-to-cluster", "POST", SEND_PARAMS,
             l2_resource, "l2-networks/{l2NetworkUuid}/clusters/"
             "{clusterUuid}", l2_cluster_fields, "l2NetworkUuid clusterUuid",
             "Attach an L2 network to a cluster"),
    CMD_LINK("detach-l2-network-from-cluster", "DELETE", SEND_NONE,
             l2_resource, "l2-networks/{l2NetworkUuid}/clusters/"
             "{clusterUuid}", l2_cluster_fields, "l2NetworkUuid clusterUuid",
             "Detach an L2 network from a cluster"),

    { .summary = "L3 networks" },
    CMD_CREATE("create-l3-network", "l3-network create", l3_resource, "@",
               "Create an L3 network on an L2 network"),
    CMD_QUERY("query-l3-network", "l3-network list", l3_resource,
              "Query L3 networks"),
    CMD_UPDATE("update-l3-network", l3_resource, "Change an L3 network's "
               "name, description, category, system flag or DNS domain"),
    CMD_STATE("change-l3-network-state", l3_resource, "Enable or disable "
              "an L3 network"),
    CMD_DELETE("delete-l3-network", NULL, l3_resource,
               "Delete an L3 network"),
    { .name = "add-ip-range", .alias = "ip-range add",
      .summary = "Add an IP range (start, end, netmask, gateway) to an L3 "
      "network", .res = &ip_range_resource, .method = "POST",
      .path = "l3-networks/{l3NetworkUuid}/ip-ranges", .send = SEND_PARAMS,
      .extra = ip_range_fields, .args = "l3NetworkUuid name" },
    { .name = "add-ip-range-by-network-cidr",
      .summary = "Add an IP range by CIDR to an L3 network",
      .res = &ip_range_resource, .method = "POST",
      .path = "l3-networks/{l3NetworkUuid}/ip-ranges/by-cidr",
      .send = SEND_PARAMS, .extra = ip_range_cidr_fields,
      .args = "l3NetworkUuid name" },
    CMD_QUERY("query-ip-range", "ip-range list", ip_range_resource,
              "Query IP ranges"),
    CMD_UPDATE("update-ip-range", ip_range_resource, "Rename or describe "
               "an IP range"),
    CMD_DELETE("delete-ip-range", NULL, ip_range_resource,
               "Delete an IP range no address of which is in use"),
    { .name = "add-dns-to-l3-network",
      .summary = "Add a DNS server to an L3 network", .res = &l3_resource,
      .method = "POST", .path = "l3-networks/{l3NetworkUuid}/dns",
      .send = SEND_PARAMS, .extra = dns_fields,
      .args = "l3NetworkUuid dns" },
    { .name = "remove-dns-from-l3-network",
      .summary = "Remove a DNS server from an L3 network",
      .res = &l3_resource, .method = "DELETE",
      .path = "l3-networks/{l3NetworkUuid}/dns/{dns}", .extra = dns_fields,
      .args = "l3NetworkUuid dns" },
    { .name = "attach-network-service-to-l3-network",
      .summary = "Give an L3 network services of a provider",
      .res = &l3_resource, .method = "POST",
      .path = "l3-networks/{l3NetworkUuid}/network-services",
      .send = SEND_PARAMS, .extra = network_service_fields,
      .args = "l3NetworkUuid", .hook = network_services_hook },
    CMD_QUERY("query-network-service-provider", NULL, provider_resource,
              "Query network service providers"),

    { .summary = "Offerings" },
    CMD_CREATE("create-instance-offering", NULL, instance_offering_resource,
               "@", "Create an instance offering (CPU and memory of VMs)"),
    CMD_QUERY("query-instance-offering", NULL, instance_offering_resource,
              "Query instance offerings"),
    CMD_UPDATE("update-instance-offering", instance_offering_resource,
               "Change an instance offering's name, description or sort "
               "key"),
    CMD_STATE("change-instance-offering-state", instance_offering_resource,
              "Enable or disable an instance offering"),
    CMD_DELETE("delete-instance-offering", NULL, instance_offering_resource,
               "Delete an instance offering"),
    CMD_CREATE("create-virtual-router-offering", NULL, vr_offering_resource,
               "@", "Create a virtual router offering"),
    CMD_QUERY("query-virtual-router-offering", NULL, vr_offering_resource,
              "Query virtual router offerings"),
    CMD_UPDATE("update-virtual-router-offering", vr_offering_resource,
               "Change a virtual router offering"),
    CMD_STATE("change-virtual-router-offering-state", vr_offering_resource,
              "Enable or disable a virtual router offering"),
    CMD_DELETE("delete-virtual-router-offering", NULL, vr_offering_resource,
               "Delete a virtual router offering"),

    { .summary = "VM instances" },
    CMD_CREATE("create-vm-instance", "vm create", vm_resource, "@",
               "Create a VM and start it (--strategy JustCreate only "
               "records it)"),
    CMD_QUERY("query-vm-instance", "vm list", vm_resource, "Query VMs"),
    CMD_UPDATE("update-vm-instance", vm_resource, "Rename or describe a "
               "VM"),
    CMD_VM_ACTION("start-vm-instance", "startVmInstance", "Start a VM"),
    { .name = "stop-vm-instance", .alias = "vm stop",
      .summary = "Stop a VM (--type grace: ACPI, forced after a timeout; "
      "cold: forced at once)", .res = &vm_resource, .method = "PUT",
      .path = "@/{uuid}/actions", .send = SEND_ACTION,
      .action = "stopVmInstance", .extra = stop_fields, .args = "uuid" },
    { .name = "get-vm-console-log", .alias = "vm console",
      .summary = "Print the end of a VM's serial console log",
      .res = &vm_resource, .method = "GET", .path = "@/{uuid}/console-log",
      .args = "uuid" },
    CMD_QUERY("query-virtual-router-vm", "vr list", vr_resource,
              "Query virtual routers (ApplianceVm)"),
    CMD_VM_ACTION("reboot-vm-instance", "rebootVmInstance", "Reboot a VM"),
    { .name = "destroy-vm-instance", .alias = "vm destroy",
      .summary = "Destroy a VM (it can be recovered until expunged)",
      .res = &vm_resource, .method = "DELETE", .path = "@/{uuid}",
      .args = "uuid" },
    CMD_VM_ACTION("recover-vm-instance", "recoverVmInstance",
                  "Recover a destroyed VM"),
    CMD_VM_ACTION("expunge-vm-instance", "expungeVmInstance",
                  "Remove a destroyed VM for good"),
    CMD_QUERY("query-vm-nic", "vm nics", vm_nic_resource, "Query VM NICs"),

    { .summary = "VIPs" },
    CMD_CREATE("create-vip", "vip create", vip_resource, "@",
               "Create a VIP on an L3 network"),
    CMD_QUERY("query-vip", "vip list", vip_resource, "Query VIPs"),
    CMD_UPDATE("update-vip", vip_resource, "Rename or describe a VIP"),
    CMD_STATE("change-vip-state", vip_resource, "Enable or disable a VIP"),
    CMD_DELETE("delete-vip", "vip delete", vip_resource,
               "Delete a VIP and its port-forwarding rules"),
    { .name = "check-vip-port-availability",
      .summary = "Tell whether ports of a VIP are free for a new rule",
      .res = &vip_resource, .method = "GET",
      .path = "@/{uuid}/check-port-availability", .send = SEND_QUERY,
      .extra = vip_port_fields, .args = "uuid protocolType start end" },

    { .summary = "Port forwarding" },
    { .name = "create-port-forwarding-rule", .alias = "pf-rule create",
      .summary = "Create a port-forwarding rule, attached with --vm or "
      "--vm-nic-uuid", .res = &pf_rule_resource, .method = "POST",
      .path = "@", .send = SEND_PARAMS, .mask = F_CREATE,
      .extra = pf_create_fields, .args = "name", .hook = pf_create_hook },
    CMD_QUERY("query-port-forwarding-rule", "pf-rule list",
              pf_rule_resource, "Query port-forwarding rules"),
    CMD_UPDATE("update-port-forwarding-rule", pf_rule_resource,
               "Rename or describe a port-forwarding rule"),
    CMD_STATE("change-port-forwarding-rule-state", pf_rule_resource,
              "Enable or disable a port-forwarding rule"),
    CMD_DELETE("delete-port-forwarding-rule", "pf-rule delete",
               pf_rule_resource, "Delete a port-forwarding rule"),
    { .name = "attach-port-forwarding-rule", .alias = "pf-rule attach",
      .summary = "Attach a rule to a VM NIC (--vm-nic-uuid) or to a VM's "
      "candidate NIC (--vm)", .res = &pf_rule_resource, .method = "POST",
      .path = "@/{ruleUuid}/vm-instances/nics/{vmNicUuid}",
      .send = SEND_PARAMS, .extra = pf_attach_fields,
      .args = "ruleUuid vmNicUuid", .hook = pf_attach_hook },
    { .name = "detach-port-forwarding-rule", .alias = "pf-rule detach",
      .summary = "Detach a rule from its VM NIC", .res = &pf_rule_resource,
      .method = "DELETE", .path = "@/{uuid}/vm-instances/nics",
      .args = "uuid" },
    { .name = "get-port-forwarding-rule-candidate-nics",
      .alias = "pf-rule candidates",
      .summary = "List the VM NICs a rule can be attached to",
      .res = &pf_rule_resource, .out = &vm_nic_resource, .method = "GET",
      .path = "@/{ruleUuid}/vm-instances/candidate-nics",
      .extra = pf_rule_fields, .args = "ruleUuid" },
};

/* The command named 'name', or with alias "'noun' 'verb'". */
static const struct cli_cmd *
cmd_find(const char *name, const char *verb)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        const struct cli_cmd *cmd = &commands[i];

        if (!cmd->name) {
            continue;
        }
        if (!verb && !strcmp(cmd->name, name)) {
            return cmd;
        }
        if (verb && cmd->alias) {
            size_t n = strlen(name);

            if (!strncmp(cmd->alias, name, n) && cmd->alias[n] == ' '
                && !strcmp(cmd->alias + n + 1, verb)) {
                return cmd;
            }
        }
    }
    return NULL;
}

/* "kvmstack help": every command by group, the aliases, the setup. */
static void
general_help(FILE *out)
{
    bool first = true;

    fprintf(out, "usage: kvmstack [--url URL] [--json] [--no-wait] COMMAND "
            "[ARGUMENTS]\n"
            "       kvmstack serve --help\n"
            "       kvmstack COMMAND --help\n\n"
            "The command-line client of kvmstack's ZStack-style API.  Names "
            "may stand for\nUUIDs wherever one row has that name.\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        const struct cli_cmd *cmd = &commands[i];

        if (!cmd->name) {
            fprintf(out, "\n%s:\n", cmd->summary);
            continue;
        }
        if (strlen(cmd->name) > 36) {
            fprintf(out, "  %s\n  %-36s ", cmd->name, "");
        } else {
            fprintf(out, "  %-36s ", cmd->name);
        }
        print_wrapped(out, cmd->summary, 39);
    }
    fprintf(out, "\nAliases:");
    for (size_t i = 0, col = 8; i < ARRAY_SIZE(commands); i++) {
        const struct cli_cmd *cmd = &commands[i];

        if (!cmd->alias) {
            continue;
        }
        if (col + strlen(cmd->alias) + 2 > 78) {
            fprintf(out, ",\n ");
            col = 1;
        } else if (!first) {
            fprintf(out, ",");
            col++;
        }
        fprintf(out, " %s", cmd->alias);
        col += strlen(cmd->alias) + 1;
        first = false;
    }
    fprintf(out, "\n\nThe server is --url, else $KVMSTACK_URL, else the "
            "session file's, else\n" CLI_DEFAULT_URL ".  $KVMSTACK_SESSION "
            "overrides the session file\n~/.kvmstack/session.  "
            "Exit status: 0 done, 1 the call failed, 2 usage error.\n");
}

/* See cli.h. */
int
cli_main(int argc, char **argv)
{
    struct cli c;
    const struct cli_cmd *cmd = NULL;
    int i = 1;
    int rc = -1;

    memset(&c, 0, sizeof c);
    if (wipe_allocators_install() < 0) {
        fprintf(stderr, "kvmstack: %s\n", error_last_message());
        return 1;
    }
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        char *opt;
        int g;

        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            general_help(stdout);
            return 0;
        }
        if (a[1] != '-') {
            fprintf(stderr, "kvmstack: unknown option '%s'\n", a);
            return 2;
        }
        opt = eq ? xstrndup(a + 2, (size_t) (eq - a - 2)) : xstrdup(a + 2);
        g = global_option(&c, opt, eq ? eq + 1 : NULL, argc, argv, &i);
        free(opt);
        if (g <= 0) {
            fprintf(stderr, "kvmstack: %s\n", g < 0 ? error_last_message()
                    : "unknown option before the command");
            return 2;
        }
        i++;
    }
    if (i >= argc) {
        general_help(stderr);
        return 2;
    }
    if (!strcmp(argv[i], "help")) {
        if (i + 1 >= argc) {
            general_help(stdout);
            return 0;
        }
        cmd = cmd_find(argv[i + 1], i + 2 < argc ? argv[i + 2] : NULL);
        if (!cmd) {
            cmd = cmd_find(argv[i + 1], NULL);
        }
        if (!cmd) {
            fprintf(stderr, "kvmstack: unknown command '%s'; see 'kvmstack "
                    "help'\n", argv[i + 1]);
            return 2;
        }
        c.cmd = cmd;
        if (!cmd->run || cmd->query) {
            params_build(&c);
        }
        cmd_help(&c, stdout);
        params_free(&c);
        return 0;
    }
    cmd = cmd_find(argv[i], NULL);
    if (!cmd && i + 1 < argc) {
        cmd = cmd_find(argv[i], argv[i + 1]);
        if (cmd) {
            i++;
        }
    }
    if (!cmd) {
        fprintf(stderr, "kvmstack: unknown command '%s'; see 'kvmstack "
                "help'\n", argv[i]);
        return 2;
    }
    c.cmd = cmd;
    c.curl = curl_easy_init();
    if (!c.curl) {
        fprintf(stderr, "kvmstack: cannot initialise libcurl\n");
        return 1;
    }
    curl_easy_setopt(c.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c.curl, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c.curl, CURLOPT_USERAGENT, "kvmstack-cli");
    curl_easy_setopt(c.curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!cmd->run || cmd->query) {
        params_build(&c);
    }
    rc = (cmd->run ? cmd->run : run_generic)(&c, cmd, argc - i, argv + i);
    fflush(stdout);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    params_free(&c);
    free(c.url);
    free(c.session);
    if (rc < 0) {
        fprintf(stderr, "kvmstack: %s\n", error_last_message());
        if (c.usage) {
            fprintf(stderr, "Try 'kvmstack %s --help'.\n", cmd->name);
        }
        return c.usage ? 2 : 1;
    }
    return 0;
}
