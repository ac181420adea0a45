/* imageops.h: image downloads to backup storage and the image cache of
 * primary storage. */
#ifndef MGMT_IMAGEOPS_H
#define MGMT_IMAGEOPS_H 1

#include <jansson.h>

struct job;

/* The job of AddImage; ctx {"uuid"}. */
json_t *image_add_job(struct job *job, json_t *ctx, int *status);

/* The path of image 'image_uuid' in the cache of primary storage
 * 'ps_uuid', copying it there through host 'host_uuid' (which mounts the
 * storage) on first use.  Caller frees; NULL with an error reported. */
char *image_ensure_cached(struct job *job, const char *image_uuid,
                          const char *ps_uuid, const char *host_uuid);

#endif
