/* job.c: the API job engine (see job.h).
 *
 * DESIGN: a mutex-protected FIFO of accepted jobs feeds a fixed pool of
 * worker threads.  The apiJob row is the durable record: state Running,
 * then Succeeded or Failed with the HTTP status and body the client gets
 * when it polls GET /zstack/v1/api-jobs/{uuid}.  Progress lines are
 * written to the row as they happen so a poller sees them. */
#include "job.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "resources.h"

LOG_MODULE("mgmt.job");

struct job {
    struct job *next;           /* Queue link. */
    char uuid[UUID_LEN + 1];
    char *api_name;
    job_fn *fn;
    json_t *ctx;                /* Owned. */
};

static pthread_mutex_t job_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t job_idle_cond = PTHREAD_COND_INITIALIZER;
static struct job *queue_head;
static struct job *queue_tail;
static int busy;
static bool stopping;
static pthread_t *workers;
static int n_workers;

const char *
job_uuid(const struct job *job)
{
    return job->uuid;
}

void
job_progress(struct job *job, const char *fmt, ...)
{
    struct db *db = db_thread();
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    LOG_INFO("job %s (%s): %s", job->uuid, job->api_name, msg);
    if (db_begin(db) < 0
        || db_exec(db, "UPDATE apiJob SET progress = ?1, log = log || ?1 "
                   "|| char(10), lastOpDate = ?2 WHERE uuid = ?3", "sis",
                   msg, time_wall_msec(), job->uuid) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        LOG_WARN("job %s: cannot record progress: %s", job->uuid,
                 error_last_message());
    }
    free(msg);
}

static void
job_finish(struct job *job, json_t *result, int status)
{
    struct db *db = db_thread();
    char *text;

    if (!result) {
        enum problem p = error_last_problem();

        status = api_problem_status(p);
        result = json_pack("{s:{s:s,s:s,s:s}}", "error", "code",
                           p == PROBLEM_INVALID_ARGUMENT ? "SYS.1007"
                                                         : "SYS.1001",
                           "description", "The operation failed",
                           "details", error_last_message());
        json_object_set_new(json_object_get(result, "error"), "problem",
                            json_string(problem_name(p)));
        if (error_last_field()) {
            json_object_set_new(json_object_get(result, "error"), "field",
                                json_string(error_last_field()));
        }
    }
    text = json_dumps(result, JSON_COMPACT);
    if (db_write(db, "UPDATE apiJob SET state = ?1, httpStatus = ?2, "
                 "result = ?3, lastOpDate = ?4 WHERE uuid = ?5", "sdsis",
                 status < 300 ? "Succeeded" : "Failed", status, text,
                 time_wall_msec(), job->uuid) < 0) {
        LOG_ERR("job %s: cannot record its result: %s", job->uuid,
                error_last_message());
    }
    LOG_INFO("job %s (%s) %s", job->uuid, job->api_name,
             status < 300 ? "succeeded" : "failed");
    free(text);
    json_decref(result);
}

static void *
worker_main(void *arg)
{
    (void) arg;
    for (;;) {
        struct job *job;
        json_t *result;
        int status = 200;

        pthread_mutex_lock(&job_mutex);
        while (!queue_head && !stopping) {
            pthread_cond_wait(&job_cond, &job_mutex);
        }
        if (!queue_head) {
            pthread_mutex_unlock(&job_mutex);
            break;
        }
        job = queue_head;
        queue_head = job->next;
        if (!queue_head) {
            queue_tail = NULL;
        }
        busy++;
        pthread_mutex_unlock(&job_mutex);

        error_reset();
        result = job->fn(job, job->ctx, &status);
        db_settle(db_thread());
        job_finish(job, result, status);

        json_decref(job->ctx);
        free(job->api_name);
        free(job);
        pthread_mutex_lock(&job_mutex);
        busy--;
        if (!busy && !queue_head) {
            pthread_cond_broadcast(&job_idle_cond);
        }
        pthread_mutex_unlock(&job_mutex);
    }
    error_reset();              /* The last job's error would leak. */
    db_thread_close();
    return NULL;
}

int
job_engine_start(int n)
{
    struct db *db = db_thread();
    int changed;

    if (db_begin(db) < 0) {
        return -1;
    }
    changed = db_exec(db, "UPDATE apiJob SET state = 'Failed', "
                      "httpStatus = 503, result = ?1, lastOpDate = ?2 "
                      "WHERE state = 'Running'", "si",
                      "{\"error\":{\"code\":\"SYS.1001\",\"description\":"
                      "\"The operation failed\",\"details\":\"the "
                      "management node restarted while this job ran; "
                      "retry it\",\"problem\":\"internal-error\"}}",
                      time_wall_msec());
    if (changed < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    if (changed > 0) {
        LOG_WARN("%d job(s) interrupted by the last shutdown were marked "
                 "failed", changed);
    }
    n_workers = n;
    workers = xcalloc((size_t) n, sizeof *workers);
    for (int i = 0; i < n; i++) {
        pthread_create(&workers[i], NULL, worker_main, NULL);
    }
    return 0;
}

void
job_engine_drain(void)
{
    pthread_mutex_lock(&job_mutex);
    while (busy || queue_head) {
        pthread_cond_wait(&job_idle_cond, &job_mutex);
    }
    pthread_mutex_unlock(&job_mutex);
}

void
job_engine_stop(void)
{
    pthread_mutex_lock(&job_mutex);
    stopping = true;
    pthread_cond_broadcast(&job_cond);
    pthread_mutex_unlock(&job_mutex);
    for (int i = 0; i < n_workers; i++) {
        pthread_join(workers[i], NULL);
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
}

int
job_submit(struct api_req *req, const char *api_name,
           const char *resource_uuid, job_fn *fn, json_t *ctx)
{
    struct db *db = db_thread();
    struct job *job = xcalloc(1, sizeof *job);
    int64_t now = time_wall_msec();
    char *base;

    uuid_generate_hex(job->uuid);
    job->api_name = xstrdup(api_name);
    job->fn = fn;
    job->ctx = ctx;
    if (db_write(db, "INSERT INTO apiJob (uuid, apiName, state, progress, "
                 "resourceUuid, createDate, lastOpDate) VALUES (?1, ?2, "
                 "'Running', 'accepted', ?3, ?4, ?4)", "sssi", job->uuid,
                 api_name, resource_uuid, now) < 0) {
        json_decref(job->ctx);
        free(job->api_name);
        free(job);
        return -1;
    }
    base = api_base_url(req);
    req->location = xasprintf("%s" API_PREFIX "/api-jobs/%s", base,
                              job->uuid);
    free(base);
    api_reply(req, 202, json_pack("{s:s, s:s}", "location", req->location,
                                  "uuid", job->uuid));
    pthread_mutex_lock(&job_mutex);
    if (queue_tail) {
        queue_tail->next = job;
    } else {
        queue_head = job;
    }
    queue_tail = job;
    pthread_cond_signal(&job_cond);
    pthread_mutex_unlock(&job_mutex);
    return 0;
}

int
job_get(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *row = res_load_table(db, "apiJob", req->args[0]);
    const char *state;
    json_t *result;
    json_error_t jerr;

    if (!row) {
        return -1;
    }
    state = json_string_value(json_object_get(row, "state"));
    if (!strcmp(state, "Running")) {
        char *base = api_base_url(req);

        req->location = xasprintf("%s" API_PREFIX "/api-jobs/%s", base,
                                  req->args[0]);
        free(base);
        api_reply(req, 202, json_pack(
                      "{s:s, s:s, s:s, s:O}", "location", req->location,
                      "state", state, "apiName",
                      json_string_value(json_object_get(row, "apiName")),
                      "progress", json_object_get(row, "progress")));
        json_decref(row);
        return 0;
    }
    result = json_loads(json_string_value(json_object_get(row, "result")),
                        0, &jerr);
    api_reply(req, (int) json_integer_value(json_object_get(row,
                                                            "httpStatus")),
              result ? result : json_object());
    json_decref(row);
    return 0;
}

static const struct field api_job_fields[] = {
    { .name = "apiName", .type = FT_STR },
    { .name = "state", .type = FT_STR },
    { .name = "progress", .type = FT_STR },
    { .name = "resourceUuid", .type = FT_UUID },
    { .name = "httpStatus", .type = FT_INT },
    { .name = "result", .type = FT_STR, .flags = F_HIDDEN },
    { .name = "log", .type = FT_STR },
    { .name = "createDate", .type = FT_DATE },
    { .name = "lastOpDate", .type = FT_DATE },
    { 0 },
};

static const char *const api_job_columns[] = {
    "uuid", "apiName", "state", "progress", "resourceUuid", NULL
};

const struct resource api_job_resource = {
    .kind = "ApiJob",
    .label = "API job",
    .table = "apiJob",
    .path = "api-jobs",
    .fields = api_job_fields,
    .columns = api_job_columns,
};
