/* job.h: API jobs, the long operations that answer 202 with a location.
 *
 * A job is persisted in the apiJob table from the moment it is accepted;
 * the HTTP handler that accepted it returns at once with
 * {"location": ".../zstack/v1/api-jobs/<uuid>"}.  Worker threads run the
 * job's function, which reports progress and ends with a result (an HTTP
 * status and a JSON body, the same the synchronous API would have
 * answered).  A job found Running when mgmt starts was interrupted: it is
 * marked failed, with its resource's own recovery left to the resource. */
#ifndef MGMT_JOB_H
#define MGMT_JOB_H 1

#include <jansson.h>

struct api_req;
struct job;

/* Runs the job; returns the result body (owned by the job engine) and sets
 * '*status'.  On failure returns NULL with an error reported. */
typedef json_t *job_fn(struct job *job, json_t *ctx, int *status);

/* Starts the worker threads; marks interrupted jobs failed. */
int job_engine_start(int workers);
void job_engine_stop(void);

/* Accepts a job for 'api_name' on 'resource_uuid' (may be NULL), stores it
 * and replies 202 with its location.  Takes ownership of 'ctx'. */
int job_submit(struct api_req *req, const char *api_name,
               const char *resource_uuid, job_fn *fn, json_t *ctx);

/* Records a progress line ("installing packages (3/9)") on the job. */
void job_progress(struct job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *job_uuid(const struct job *job);

/* Waits until the job queue is empty (tests and shutdown). */
void job_engine_drain(void);

#endif
