/* api.h: the HTTP API of kvmstack serve: request and reply, routing, and
 * the helpers every resource module uses to answer. */
#ifndef MGMT_API_H
#define MGMT_API_H 1

#include <jansson.h>
#include <stdbool.h>

#include "kvmstack/error.h"

struct MHD_Connection;
struct resource;

#define API_PREFIX "/zstack/v1"
#define API_MAX_BODY (1024 * 1024)
#define API_MAX_PATH_ARGS 4

/* One API request being answered; lives for one HTTP request. */
struct api_req {
    const char *method;         /* "GET", "POST", "PUT", "DELETE". */
    const char *url;            /* Path as received, e.g. /zstack/v1/zones. */
    char *args[API_MAX_PATH_ARGS]; /* Values of the route's {} segments. */
    int n_args;
    struct MHD_Connection *conn;
    json_t *body;               /* Parsed JSON body or NULL. */
    const struct resource *res; /* The route's resource, if generic. */
    const void *route_data;     /* The route's extra data. */
    char account_uuid[33];      /* The authenticated account. */
    char session_uuid[33];      /* The session used. */
    char client_ip[64];         /* For rate limiting and logs. */
    int status;                 /* Reply status. */
    json_t *reply;              /* Reply body (owned). */
    char *location;             /* Location header for 202 answers. */
};

typedef int api_handler(struct api_req *req);

/* A route: 'pattern' is a path below API_PREFIX whose "{}" segments match
 * one path segment each and are stored in req->args in order. */
struct api_route {
    const char *method;
    const char *pattern;
    api_handler *handler;
    const struct resource *res;
    const void *data;
    bool public;                /* No session required (login only). */
};

/* Sets the reply; takes ownership of 'body'.  Returns 0. */
int api_reply(struct api_req *req, int status, json_t *body);

/* Replies with the thread's last error as ZStack's error object, the HTTP
 * status chosen from its problem code.  Returns 0. */
int api_reply_error(struct api_req *req);

/* Reports an error and replies with it.  Returns 0. */
int api_fail(struct api_req *req, enum problem p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a problem code to an HTTP status. */
int api_problem_status(enum problem p);

/* The value of query argument 'name' (first one), or NULL. */
const char *api_query_arg(struct api_req *req, const char *name);

/* Calls 'cb' for each value of the repeated query argument 'name'. */
int api_query_each(struct api_req *req, const char *name,
                   int (*cb)(void *aux, const char *value), void *aux);

/* The "params" object of the request body (or, for actions, the object
 * under the action key).  Replies 400 and returns NULL when absent or not
 * an object. */
json_t *api_params(struct api_req *req);

/* Base URL of this server as the client addressed it, e.g.
 * "http://127.0.0.1:5000"; caller frees. */
char *api_base_url(struct api_req *req);

/* Starts the HTTP server.  'listen' is ADDR:PORT.  Returns -1 on error. */
int api_server_start(const char *listen, int threads);
void api_server_stop(void);

/* The route table (routes.c). */
extern const struct api_route api_routes[];
extern const int api_n_routes;

#endif
