/* web.c: serves the web UI (web/) that make embedded into this binary.
 *
 * DESIGN: web/embed.py turns each file of web/ that mk/web.mk lists into a
 * byte array with its Content-Type, a strong ETag (SHA-256 prefix) and a
 * gzip copy; the generated table is #included below, so `kvmstack serve`
 * needs no file beside it and the UI never loads anything from another
 * host (its Content-Security-Policy says so to the browser too).  Every
 * answer is revalidated (Cache-Control: no-cache) and a matching
 * If-None-Match gets 304, so a new build is seen at the next load and an
 * unchanged one costs a round trip without a body.  The UI is one page:
 * "/", "/login" and "/index.html" answer the same HTML; views are chosen
 * in the page, by the URL's fragment.  Paths that are not the UI's are left
 * to the API dispatcher (http.c), which answers them as before. */
#include "web.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("mgmt.web");

/* One embedded file. */
struct web_asset {
    const char *path;           /* URL path, e.g. "/app.js". */
    const char *type;           /* Content-Type. */
    const char *etag;           /* Quoted strong ETag of 'data'. */
    const char *etag_gz;        /* Quoted strong ETag of 'gz'. */
    const unsigned char *data;  /* The file's bytes. */
    size_t size;
    const unsigned char *gz;    /* gzip of 'data', or NULL if not smaller. */
    size_t gz_size;
};

#include "web-assets.inc"

/* The page may load only what this server serves and talk only to it. */
#define WEB_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "            \
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* The embedded file for URL path 'path' ("/" and "/login" are the page),
 * or NULL if the path is not the UI's. */
static const struct web_asset *
web_find(const char *path)
{
    if (!strcmp(path, "/") || !strcmp(path, "/login")) {
        path = "/index.html";
    }
    for (size_t i = 0; i < ARRAY_SIZE(web_assets); i++) {
        if (!strcmp(web_assets[i].path, path)) {
            return &web_assets[i];
        }
    }
    return NULL;
}

/* True if the Accept-Encoding header 'ae' accepts gzip: a "gzip" (or "*")
 * token whose q value, if any, is not zero. */
static bool
web_accepts_gzip(const char *ae)
{
    const char *p = ae;

    while (p && *p) {
        size_t len;
        const char *q;

        p += strspn(p, " \t,");
        len = strcspn(p, " \t,;");
        if ((len == 4 && !strncasecmp(p, "gzip", 4))
            || (len == 1 && *p == '*')) {
            q = p + len;
            q += strspn(q, " \t");
            if (*q != ';') {
                return true;
            }
            q++;
            q += strspn(q, " \t");
            if (strncasecmp(q, "q=", 2)) {
                return true;
            }
            q += 2;
            q += strspn(q, "0.");
            return *q >= '1' && *q <= '9';
        }
        p += strcspn(p, ",");
    }
    return false;
}

/* True if the If-None-Match header 'inm' lists 'etag' (or is "*"). */
static bool
web_etag_matches(const char *inm, const char *etag)
{
    size_t len = strlen(etag);
    const char *p = inm;

    while (p && *p) {
        p += strspn(p, " \t,");
        if (*p == '*') {
            return true;
        }
        if (!strncmp(p, "W/", 2)) {
            p += 2;
        }
        if (!strncmp(p, etag, len) && strchr(" \t,", p[len])) {
            return true;
        }
        p += strcspn(p, ",");
    }
    return false;
}

/* Adds the caching and security headers of asset 'a', served as the
 * representation whose ETag is 'etag', to 'resp'. */
static void
web_add_headers(struct MHD_Response *resp, const struct web_asset *a,
                const char *etag)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (!strncmp(a->type, "text/html", 9)) {
        MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    }
}

bool
web_serve(struct MHD_Connection *conn, const char *method, const char *url,
          enum MHD_Result *ret)
{
    const struct web_asset *a = web_find(url);
    struct MHD_Response *resp;
    const char *inm;
    const char *ae;
    bool gz;
    unsigned int status = MHD_HTTP_OK;

    if (!a) {
        return false;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        static const char msg[] = "method not allowed\n";

        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *) msg,
                                               MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/plain; charset=utf-8");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        *ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        MHD_destroy_response(resp);
        LOG_DBG("%s %s -> 405", method, url);
        return true;
    }
    ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_ACCEPT_ENCODING);
    gz = a->gz && web_accepts_gzip(ae);
    inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && web_etag_matches(inm, gz ? a->etag_gz : a->etag)) {
        status = MHD_HTTP_NOT_MODIFIED;
        resp = MHD_create_response_from_buffer(0, NULL,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(
            gz ? a->gz_size : a->size, (void *) (gz ? a->gz : a->data),
            MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
        if (gz) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                    "gzip");
        }
    }
    web_add_headers(resp, a, gz ? a->etag_gz : a->etag);
    *ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    LOG_DBG("%s %s -> %u%s", method, url, status, gz ? " (gzip)" : "");
    return true;
}
