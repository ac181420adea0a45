/* http.c: kvmstack serve's HTTP front end on libmicrohttpd.
 *
 * DESIGN: MHD runs a pool of worker threads, each polling its share of the
 * connections; a request is answered entirely on the worker that read it,
 * with that thread's own SQLite connection (db_thread()).  Bodies are
 * collected up to API_MAX_BODY and refused with 413 beyond it; the body of
 * a POST or PUT must be JSON (415 otherwise).  Every route but login needs
 * a session (auth.c).  Routes live in routes.c. */
#include "api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "db.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "web.h"

LOG_MODULE("mgmt.http");

static struct MHD_Daemon *daemon_handle;

struct upload {
    struct sbuf body;           /* Request body so far. */
    bool too_big;               /* More than API_MAX_BODY was sent. */
};

int
api_problem_status(enum problem p)
{
    switch (p) {
    case PROBLEM_INVALID_ARGUMENT:
        return 400;
    case PROBLEM_ACCESS_DENIED:
        return 401;
    case PROBLEM_NOT_FOUND:
        return 404;
    case PROBLEM_CONFLICT:
        return 409;
    case PROBLEM_TOO_LARGE:
        return 413;
    case PROBLEM_RATE_LIMITED:
        return 429;
    case PROBLEM_NOT_SUPPORTED:
        return 501;
    case PROBLEM_HOST_UNREACHABLE:
    case PROBLEM_TIMEOUT:
        return 503;
    default:
        return 500;
    }
}

/* ZStack's error codes, so that its clients recognise the families. */
static const char *
problem_zstack_code(enum problem p, const char **description)
{
    switch (p) {
    case PROBLEM_INVALID_ARGUMENT:
        *description = "One or more API argument is invalid";
        return "SYS.1007";
    case PROBLEM_NOT_FOUND:
        *description = "Unable to find resource";
        return "SYS.1006";
    case PROBLEM_CONFLICT:
        *description = "The operation conflicts with an existing resource";
        return "SYS.1010";
    case PROBLEM_ACCESS_DENIED:
        *description = "Invalid session, or the session expired";
        return "ID.1001";
    case PROBLEM_TIMEOUT:
        *description = "Operation timeout";
        return "SYS.1004";
    case PROBLEM_NOT_SUPPORTED:
        *description = "The operation is not supported";
        return "SYS.1011";
    case PROBLEM_TOO_LARGE:
        *description = "The request body is too large";
        return "SYS.1012";
    case PROBLEM_RATE_LIMITED:
        *description = "Too many failed attempts; try again later";
        return "ID.1002";
    case PROBLEM_HOST_UNREACHABLE:
        *description = "Unable to reach the host";
        return "HOST.1000";
    case PROBLEM_PROTOCOL_ERROR:
        *description = "Agent protocol error";
        return "HOST.1001";
    default:
        *description = "An internal error happened";
        return "SYS.1000";
    }
}

int
api_reply(struct api_req *req, int status, json_t *body)
{
    json_decref(req->reply);
    req->status = status;
    req->reply = body;
    return 0;
}

int
api_reply_error(struct api_req *req)
{
    enum problem p = error_last_problem();
    const char *description;
    const char *code = problem_zstack_code(p, &description);
    json_t *err;

    err = json_pack("{s:s, s:s, s:s, s:s}", "code", code, "description",
                    description, "details", error_last_message(),
                    "problem", problem_name(p));
    if (error_last_field()) {
        json_object_set_new(err, "field", json_string(error_last_field()));
    }
    return api_reply(req, api_problem_status(p), json_pack("{s:o}", "error",
                                                            err));
}

int
api_fail(struct api_req *req, enum problem p, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    error_report(p, "%s", msg);
    free(msg);
    return api_reply_error(req);
}

const char *
api_query_arg(struct api_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

struct each_ctx {
    const char *name;
    int (*cb)(void *aux, const char *value);
    void *aux;
    int rc;
};

static enum MHD_Result
each_iter(void *cls, enum MHD_ValueKind kind, const char *key,
          const char *value)
{
    struct each_ctx *ctx = cls;

    (void) kind;
    if (!strcmp(key, ctx->name) && ctx->rc == 0) {
        ctx->rc = ctx->cb(ctx->aux, value ? value : "");
    }
    return MHD_YES;
}

int
api_query_each(struct api_req *req, const char *name,
               int (*cb)(void *aux, const char *value), void *aux)
{
    struct each_ctx ctx = { name, cb, aux, 0 };

    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, each_iter,
                              &ctx);
    return ctx.rc;
}

json_t *
api_params(struct api_req *req)
{
    json_t *params;

    if (!req->body) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "params",
                           "the request needs a JSON body "
                           "{\"params\":{...}}");
        api_reply_error(req);
        return NULL;
    }
    params = json_object_get(req->body, "params");
    if (!params || !json_is_object(params)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "params",
                           "field 'params' must be a JSON object");
        api_reply_error(req);
        return NULL;
    }
    return params;
}

char *
api_base_url(struct api_req *req)
{
    const char *host = MHD_lookup_connection_value(req->conn,
                                                   MHD_HEADER_KIND, "Host");

    return xasprintf("http://%s", host ? host : "localhost:5000");
}

/* Splits 'path' and matches it against 'pattern'; fills req->args. */
static bool
route_match(const char *pattern, const char *path, struct api_req *req)
{
    int n = 0;

    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/') {
            return false;
        }
        pattern++;
        path++;
        if (!strncmp(pattern, "{}", 2)) {
            size_t len = strcspn(path, "/");

            if (len == 0 || n >= API_MAX_PATH_ARGS) {
                return false;
            }
            req->args[n++] = xstrndup(path, len);
            req->n_args = n;    /* So req_clear_args() frees a partial
                                 * match's values too. */
            pattern += 2;
            path += len;
        } else {
            size_t plen = strcspn(pattern, "/");
            size_t len = strcspn(path, "/");

            if (plen != len || strncmp(pattern, path, len)) {
                return false;
            }
            pattern += plen;
            path += len;
        }
    }
    if (*pattern || (*path && strcmp(path, "/"))) {
        return false;
    }
    req->n_args = n;
    return true;
}

static void
req_clear_args(struct api_req *req)
{
    for (int i = 0; i < req->n_args; i++) {
        free(req->args[i]);
        req->args[i] = NULL;
    }
    req->n_args = 0;
}

static void
client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    snprintf(out, size, "unknown");
    if (info && info->client_addr) {
        const struct sockaddr *sa = info->client_addr;

        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr,
                      out, (socklen_t) size);
        } else if (sa->sa_family == AF_INET6) {
            inet_ntop(AF_INET6,
                      &((const struct sockaddr_in6 *) sa)->sin6_addr, out,
                      (socklen_t) size);
        }
    }
}

static void
dispatch(struct api_req *req, const char *body, size_t body_len,
         bool too_big)
{
    const struct api_route *route = NULL;
    bool path_known = false;
    const char *path;

    if (too_big) {
        api_fail(req, PROBLEM_TOO_LARGE,
                 "the request body is larger than %d bytes", API_MAX_BODY);
        return;
    }
    if (strncmp(req->url, API_PREFIX "/", strlen(API_PREFIX) + 1)) {
        api_fail(req, PROBLEM_NOT_FOUND, "no API at '%.200s'", req->url);
        return;
    }
    path = req->url + strlen(API_PREFIX);
    for (int i = 0; i < api_n_routes; i++) {
        req_clear_args(req);
        if (route_match(api_routes[i].pattern, path, req)) {
            path_known = true;
            if (!strcmp(api_routes[i].method, req->method)) {
                route = &api_routes[i];
                break;
            }
        }
    }
    if (!route) {
        req_clear_args(req);
        if (path_known) {
            req->status = 405;
            req->reply = json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
                                   "SYS.1007", "description",
                                   "Method not allowed", "details",
                                   "this path does not take that method");
        } else {
            api_fail(req, PROBLEM_NOT_FOUND, "no API at '%s %.200s'",
                     req->method, req->url);
        }
        return;
    }
    if (!route->public && auth_check_request(req) < 0) {
        api_reply_error(req);
        return;
    }
    if (body_len > 0) {
        const char *ctype = MHD_lookup_connection_value(
            req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        json_error_t jerr;

        if (!ctype || strncasecmp(ctype, "application/json", 16)
            || (ctype[16] && ctype[16] != ';' && ctype[16] != ' ')) {
            req->status = 415;
            req->reply = json_pack(
                "{s:{s:s,s:s,s:s}}", "error", "code", "SYS.1007",
                "description", "Unsupported media type", "details",
                "the request body must be JSON with Content-Type: "
                "application/json");
            return;
        }
        req->body = json_loadb(body, body_len, JSON_REJECT_DUPLICATES,
                               &jerr);
        if (!req->body || !json_is_object(req->body)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "params",
                               "the request body is not a JSON object: %s "
                               "(line %d, column %d)",
                               req->body ? "not an object" : jerr.text,
                               jerr.line, jerr.column);
            api_reply_error(req);
            return;
        }
    }
    req->res = route->res;
    req->route_data = route->data;
    error_reset();
    if (route->handler(req) < 0 || !req->reply) {
        if (db_in_txn(db_thread())) {
            db_rollback(db_thread());
        }
        api_reply_error(req);
    }
}

static enum MHD_Result
send_reply(struct MHD_Connection *conn, struct api_req *req)
{
    char *text = req->reply ? json_dumps(req->reply, JSON_COMPACT)
                            : xstrdup("{}");
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(strlen(text), text,
                                           MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json; charset=utf-8");
    if (req->location) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
                                req->location);
    }
    if (req->status == 429) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "30");
    }
    if (req->status == 401) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "OAuth realm=\"kvmstack\"");
    }
    ret = MHD_queue_response(conn, (unsigned int) req->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url,
               const char *method, const char *version,
               const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
    struct upload *up = *con_cls;
    struct api_req req;
    enum MHD_Result ret;

    (void) cls;
    (void) version;
    if (!up) {
        up = xcalloc(1, sizeof *up);
        sbuf_init(&up->body);
        *con_cls = up;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (up->body.len + *upload_data_size > API_MAX_BODY) {
            up->too_big = true;
        } else {
            sbuf_add(&up->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = url;
    req.conn = conn;
    client_ip(conn, req.client_ip, sizeof req.client_ip);
    if (strncmp(url, API_PREFIX "/", strlen(API_PREFIX) + 1)
        && web_serve(conn, method, url, &ret)) {
        return ret;
    }
    dispatch(&req, up->body.s, up->body.len, up->too_big);
    db_settle(db_thread());
    if (!req.reply) {
        api_reply_error(&req);
    }
    LOG_DBG("%s %s -> %d", method, url, req.status);
    ret = send_reply(conn, &req);
    req_clear_args(&req);
    json_decref(req.body);
    json_decref(req.reply);
    free(req.location);
    error_reset();              /* No error outlives its request (nor the
                                 * worker thread: it would leak). */
    return ret;
}

static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    struct upload *up = *con_cls;

    (void) cls;
    (void) conn;
    (void) toe;
    if (up) {
        sbuf_destroy(&up->body);
        free(up);
        *con_cls = NULL;
    }
}

static int
parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    char *end;
    long port;

    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (!colon || (size_t) (colon - listen) >= sizeof host) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "--listen '%s' must be ADDR:PORT, e.g. 0.0.0.0:5000",
                     listen);
        return -1;
    }
    memcpy(host, listen, (size_t) (colon - listen));
    host[colon - listen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535
        || inet_pton(AF_INET, host[0] ? host : "0.0.0.0",
                     &sa->sin_addr) != 1) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "--listen '%s' must be IPV4ADDR:PORT, e.g. "
                     "0.0.0.0:5000", listen);
        return -1;
    }
    sa->sin_port = htons((uint16_t) port);
    return 0;
}

int
api_server_start(const char *listen, int threads)
{
    struct sockaddr_in sa;

    if (parse_listen(listen, &sa) < 0) {
        return -1;
    }
    daemon_handle = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
        ntohs(sa.sin_port), NULL, NULL, access_handler, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
        MHD_OPTION_END);
    if (!daemon_handle) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot listen on '%s' (address in use or not "
                     "permitted)", listen);
        return -1;
    }
    return 0;
}

void
api_server_stop(void)
{
    if (daemon_handle) {
        MHD_stop_daemon(daemon_handle);
        daemon_handle = NULL;
    }
}
