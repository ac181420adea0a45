/* web.h: the web UI of kvmstack serve: its HTML, JavaScript and CSS are
 * embedded in the binary at build time (web/embed.py) and served beside the
 * API on the same port. */
#ifndef MGMT_WEB_H
#define MGMT_WEB_H 1

#include <microhttpd.h>
#include <stdbool.h>

/* Answers a request for the web UI: "/", "/login" and "/index.html" (the
 * single page app) and the assets it loads ("/app.js", ...).  Returns
 * false, having queued nothing, for every other path (the API's paths
 * below /zstack/ among them), so that the caller dispatches it.  Returns
 * true when it queued a response; '*ret' is then MHD's result. */
bool web_serve(struct MHD_Connection *conn, const char *method,
               const char *url, enum MHD_Result *ret);

#endif
