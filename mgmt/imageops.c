/* imageops.c: images on the move: AddImage downloads an image into each of
 * its backup storages' folders (on the storage host, over SSH), and the
 * first use of an image on a primary storage copies it into that storage's
 * image cache.
 *
 * DESIGN: the backup-storage host downloads with curl (http, https) or cp
 * (file://) into "<folder>/<image uuid>.<format>.part", reporting the bytes
 * so far every second; mgmt then checks the file with qemu-img info (the
 * declared format, no backing file, a sane virtual size) and sha256, and
 * renames it.  The copy to a primary storage is relayed by mgmt between two
 * SSH sessions (backup-storage host `cat`, KVM host `cat >`), so no host
 * needs a key to another; the KVM host's agent then checks the copy
 * against the recorded sha256 and commits it to the cache.  Every user
 * value reaches a remote shell only through shell_quote(). */
#include "imageops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "hostmgr.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "playbook.h"
#include "res.h"
#include "resources.h"
#include "sshconn.h"

LOG_MODULE("mgmt.imageops");

/* Refuse images whose disk claims more than this (4 TiB). */
#define MAX_VIRTUAL_SIZE (4LL << 40)

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

struct dl_progress {
    struct job *job;
    char sha256[65];
    struct sbuf info;           /* qemu-img info JSON. */
    long long last_reported;
};

static void
dl_line(void *aux, const char *text)
{
    struct dl_progress *p = aux;
    long long bytes;

    if (sscanf(text, "PROGRESS %lld", &bytes) == 1) {
        if (bytes != p->last_reported) {
            job_progress(p->job, "downloading: %lld bytes", bytes);
            p->last_reported = bytes;
        }
    } else if (!strncmp(text, "SHA256 ", 7)) {
        snprintf(p->sha256, sizeof p->sha256, "%s", text + 7);
    } else if (!strncmp(text, "INFO ", 5)) {
        sbuf_addstr(&p->info, text + 5);
    }
}

/* Checks qemu-img's view of a file against what was declared. */
static int
check_info(json_t *info, const char *format, int64_t *virtual_size)
{
    const char *actual = jstr(info, "format");
    const char *want = strcmp(format, "iso") ? format : "raw";

    if (!actual) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "qemu-img cannot read the downloaded file");
        return -1;
    }
    if (strcmp(actual, want)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "format",
                           "the image is %s, not the declared %s", actual,
                           format);
        return -1;
    }
    if (json_object_get(info, "backing-filename")
        || json_object_get(info, "full-backing-filename")) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "the image refers to a backing file (%s); only "
                     "self-contained images are accepted",
                     jstr(info, "backing-filename"));
        return -1;
    }
    *virtual_size = json_integer_value(json_object_get(info,
                                                       "virtual-size"));
    if (*virtual_size <= 0 || *virtual_size > MAX_VIRTUAL_SIZE) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "the image's virtual size %lld is not between 1 byte "
                     "and 4 TiB", (long long) *virtual_size);
        return -1;
    }
    return 0;
}

/* Downloads image 'img' (a row) onto backup storage 'bs' (a row). */
static int
download_to_bs(struct job *job, json_t *img, json_t *bs, char **path_out,
               char sha256[65], int64_t *virtual_size, int64_t *actual)
{
    struct sshconn *c;
    AUTOFREE char *path = xasprintf("%s/%s.%s", jstr(bs, "url"),
                                    jstr(img, "uuid"), jstr(img, "format"));
    AUTOFREE char *qdir = shell_quote(jstr(bs, "url"));
    AUTOFREE char *qpath = shell_quote(path);
    AUTOFREE char *qurl = shell_quote(jstr(img, "url"));
    AUTOFREE char *cmd = NULL;
    struct dl_progress p = { job, "", { 0 }, -1 };
    struct sbuf err;
    json_t *info = NULL;
    json_error_t jerr;
    int status;
    int rc = -1;

    c = sshconn_open_key(jstr(bs, "hostname"),
                         (int) json_integer_value(json_object_get(bs,
                                                                  "sshPort")),
                         jstr(bs, "sshHostKeyFingerprint"));
    if (!c) {
        error_prefix("backup storage '%s': ", jstr(bs, "name"));
        return -1;
    }
    cmd = xasprintf(
        "set -u; d=%s; f=%s; u=%s; t=\"$f.part\"; mkdir -p -- \"$d\" || "
        "exit 1; rm -f -- \"$t\"; "
        "case \"$u\" in "
        "file://*) cp -- \"${u#file://}\" \"$t\" || exit 2;; "
        "*) curl -fsSL --proto =http,https -o \"$t\" -- \"$u\" 2>\"$t.err\" "
        "& pid=$!; while kill -0 $pid 2>/dev/null; do echo \"PROGRESS "
        "$(stat -c %%s -- \"$t\" 2>/dev/null || echo 0)\"; sleep 1; done; "
        "wait $pid; s=$?; if [ $s -ne 0 ]; then cat \"$t.err\" >&2; "
        "rm -f -- \"$t\" \"$t.err\"; exit 3; fi; rm -f -- \"$t.err\";; "
        "esac; echo \"PROGRESS $(stat -c %%s -- \"$t\")\"; "
        "echo \"SHA256 $(sha256sum -- \"$t\" | cut -d' ' -f1)\"; "
        "echo \"INFO $(qemu-img info --output=json -- \"$t\" | tr -d "
        "'\\n')\"; echo \"SIZE $(stat -c %%s -- \"$t\")\"",
        qdir, qpath, qurl);
    sbuf_init(&err);
    sbuf_init(&p.info);
    if (sshconn_exec_lines(c, cmd, dl_line, &p, &err, &status,
                           6 * 3600 * 1000) < 0) {
        goto out;
    }
    if (status != 0) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "download of '%s' failed (%s): %.500s",
                     jstr(img, "url"), status == 3 ? "curl" : "copy",
                     err.s);
        goto out;
    }
    info = json_loads(p.info.s, 0, &jerr);
    if (!info || check_info(info, jstr(img, "format"), virtual_size) < 0) {
        if (!info) {
            error_report(PROBLEM_INTERNAL_ERROR, "cannot parse qemu-img "
                         "info: %s", jerr.text);
        }
        free(cmd);
        cmd = xasprintf("rm -f -- %s.part", qpath);
        sshconn_exec(c, cmd, NULL, 0, NULL, NULL, &status, 30000);
        goto out;
    }
    *actual = json_integer_value(json_object_get(info, "actual-size"));
    free(cmd);
    cmd = xasprintf("mv -f -- %s.part %s && stat -c %%s -- %s", qpath, qpath,
                    qpath);
    {
        struct sbuf out;

        sbuf_init(&out);
        if (sshconn_exec(c, cmd, NULL, 0, &out, NULL, &status, 60000) < 0
            || status != 0) {
            sbuf_destroy(&out);
            error_report(PROBLEM_INTERNAL_ERROR, "cannot move the download "
                         "into place on the backup storage");
            goto out;
        }
        *actual = strtoll(out.s, NULL, 10);
        sbuf_destroy(&out);
    }
    snprintf(sha256, 65, "%s", p.sha256);
    *path_out = xstrdup(path);
    rc = 0;

out:
    json_decref(info);
    sbuf_destroy(&err);
    sbuf_destroy(&p.info);
    sshconn_close(c);
    return rc;
}

static int
set_image(const char *uuid, const char *status, const char *error)
{
    struct db *db = db_thread();

    if (db_write(db, "UPDATE image SET status = ?1, lastError = ?2, "
                 "lastOpDate = ?3 WHERE uuid = ?4", "ssis", status, error,
                 time_wall_msec(), uuid) < 0) {
        return -1;
    }
    return 0;
}

json_t *
image_add_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = jstr(ctx, "uuid");
    json_t *img = res_load_table(db, "image", uuid);
    json_t *refs;
    size_t i;
    json_t *ref;
    int ok = 0;
    AUTOFREE char *first_error = NULL;

    if (!img) {
        return NULL;
    }
    refs = res_select(db, "SELECT r.backupStorageUuid AS uuid, b.* FROM "
                      "imageBsRef r JOIN backupStorage b ON b.uuid = "
                      "r.backupStorageUuid WHERE r.imageUuid = ?1", "s",
                      uuid);
    json_array_foreach(refs, i, ref) {
        AUTOFREE char *path = NULL;
        char sha[65] = "";
        int64_t vsize = 0;
        int64_t actual = 0;

        job_progress(job, "downloading '%s' to backup storage '%s'",
                     jstr(img, "url"), jstr(ref, "name"));
        if (download_to_bs(job, img, ref, &path, sha, &vsize,
                           &actual) < 0) {
            LOG_WARN("image %s on backup storage %s: %s", uuid,
                     jstr(ref, "uuid"), error_last_message());
            if (!first_error) {
                first_error = xstrdup(error_last_message());
            }
            if (db_begin(db) == 0
                && db_exec(db, "UPDATE imageBsRef SET status = 'Error' "
                           "WHERE imageUuid = ?1 AND backupStorageUuid = "
                           "?2", "ss", uuid, jstr(ref, "uuid")) >= 0) {
                db_commit(db);
            }
            db_rollback(db);
            continue;
        }
        if (db_begin(db) < 0
            || db_exec(db, "UPDATE imageBsRef SET status = 'Ready', "
                       "installPath = ?1 WHERE imageUuid = ?2 AND "
                       "backupStorageUuid = ?3", "sss", path, uuid,
                       jstr(ref, "uuid")) < 0
            || db_exec(db, "UPDATE image SET sha256Sum = ?1, virtualSize = "
                       "?2, size = ?2, actualSize = ?3 WHERE uuid = ?4",
                       "siis", sha, vsize, actual, uuid) < 0
            || db_commit(db) < 0) {
            db_rollback(db);
            continue;
        }
        job_progress(job, "image ready on '%s': %lld bytes, sha256 %s",
                     jstr(ref, "name"), (long long) actual, sha);
        ok++;
    }
    json_decref(refs);
    json_decref(img);
    if (!ok) {
        set_image(uuid, "Error", first_error ? first_error
                                             : "no backup storage");
        error_report(PROBLEM_INVALID_ARGUMENT, "image download failed: %s",
                     first_error ? first_error : "no backup storage");
        return NULL;
    }
    set_image(uuid, "Ready", NULL);
    *status = 200;
    return json_pack("{s:o*}", "inventory",
                     res_inventory(db, &image_resource, uuid));
}

/* ---- The image cache of a primary storage ---- */

static int
relay_copy(struct job *job, json_t *bs, const char *src, json_t *host,
           const char *dst, int64_t size)
{
    struct sshconn *from = NULL;
    struct sshconn *to = NULL;
    struct sshconn_chan *in = NULL;
    struct sshconn_chan *out = NULL;
    AUTOFREE char *qsrc = shell_quote(src);
    AUTOFREE char *qdst = shell_quote(dst);
    AUTOFREE char *rcmd = xasprintf("cat -- %s", qsrc);
    AUTOFREE char *wcmd = xasprintf("mkdir -p -- \"$(dirname -- %s)\" && "
                                    "cat > %s", qdst, qdst);
    struct sbuf buf;
    int64_t copied = 0;
    int64_t next_report = 0;
    int rc = -1;

    sbuf_init(&buf);
    from = sshconn_open_key(jstr(bs, "hostname"),
                            (int) json_integer_value(
                                json_object_get(bs, "sshPort")),
                            jstr(bs, "sshHostKeyFingerprint"));
    to = from ? sshconn_open_key(jstr(host, "managementIp"),
                                 (int) json_integer_value(
                                     json_object_get(host, "sshPort")),
                                 jstr(host, "sshHostKeyFingerprint"))
              : NULL;
    if (!from || !to) {
        goto out;
    }
    in = sshconn_chan_open(from, rcmd);
    out = in ? sshconn_chan_open(to, wcmd) : NULL;
    if (!in || !out) {
        goto out;
    }
    sshconn_chan_send_eof(in);
    for (;;) {
        int n;

        buf.len = 0;
        n = sshconn_chan_read(in, &buf, 1000);
        if (n < 0) {
            break;              /* EOF (or error: the size check tells). */
        }
        if (n > 0 && sshconn_chan_write(out, buf.s, buf.len) < 0) {
            goto out;
        }
        copied += n;
        if (copied >= next_report) {
            job_progress(job, "copying the image to primary storage: "
                         "%lld of %lld bytes", (long long) copied,
                         (long long) size);
            next_report = copied + size / 10 + 1;
        }
    }
    error_reset();
    /* A short read is reported as such, not as the writer's failure. */
    if (size > 0 && copied != size) {
        error_report(PROBLEM_HOST_UNREACHABLE, "copied %lld bytes of %lld "
                     "from backup storage '%s': the transfer stopped early",
                     (long long) copied, (long long) size,
                     jstr(bs, "name"));
        goto out;
    }
    sshconn_chan_send_eof(out);
    if (sshconn_chan_exit_status(out, 60000) != 0) {
        error_report(PROBLEM_HOST_UNREACHABLE, "writing '%s' on host '%s' "
                     "did not complete", dst, jstr(host, "name"));
        goto out;
    }
    rc = 0;

out:
    sshconn_chan_close(in);
    sshconn_chan_close(out);
    sshconn_close(from);
    sshconn_close(to);
    sbuf_destroy(&buf);
    return rc;
}

char *
image_ensure_cached(struct job *job, const char *image_uuid,
                    const char *ps_uuid, const char *host_uuid)
{
    struct db *db = db_thread();
    json_t *rows;
    json_t *img = NULL;
    json_t *ps = NULL;
    json_t *host = NULL;
    json_t *src = NULL;
    json_t *r;
    char *path = NULL;
    AUTOFREE char *tmp = NULL;
    AUTOFREE char *final = NULL;

    pthread_mutex_lock(&cache_mutex);
    rows = res_select(db, "SELECT installPath FROM imageCache WHERE "
                      "primaryStorageUuid = ?1 AND imageUuid = ?2 AND "
                      "status = 'Ready'", "ss", ps_uuid, image_uuid);
    if (rows && json_array_size(rows)) {
        path = xstrdup(jstr(json_array_get(rows, 0), "installPath"));
        json_decref(rows);
        pthread_mutex_unlock(&cache_mutex);
        return path;
    }
    json_decref(rows);
    img = res_load_table(db, "image", image_uuid);
    ps = res_load_table(db, "primaryStorage", ps_uuid);
    host = res_load_table(db, "host", host_uuid);
    if (!img || !ps || !host) {
        goto out;
    }
    rows = res_select(db, "SELECT b.*, r.installPath AS installPath FROM "
                      "imageBsRef r JOIN backupStorage b ON b.uuid = "
                      "r.backupStorageUuid WHERE r.imageUuid = ?1 AND "
                      "r.status = 'Ready' AND b.status = 'Connected'", "s",
                      image_uuid);
    if (!rows || !json_array_size(rows)) {
        json_decref(rows);
        error_report(PROBLEM_CONFLICT, "image '%s' is not Ready on any "
                     "Connected backup storage", jstr(img, "name"));
        goto out;
    }
    src = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    final = xasprintf("%s/imagecache/%s.%s", jstr(ps, "mountPath"),
                      image_uuid, jstr(img, "format"));
    tmp = xasprintf("%s.part", final);
    job_progress(job, "first use of image '%s' on primary storage '%s': "
                 "copying it from backup storage '%s'", jstr(img, "name"),
                 jstr(ps, "name"), jstr(src, "name"));
    /* A transfer that stops is retried once on fresh sessions; the agent
     * checks the sha256 of whatever arrives either way. */
    if (relay_copy(job, src, jstr(src, "installPath"), host, tmp,
                   json_integer_value(json_object_get(img,
                                                      "actualSize"))) < 0) {
        LOG_WARN("image %s: %s; retrying the copy", image_uuid,
                 error_last_message());
        job_progress(job, "the copy stopped (%s); retrying",
                     error_last_message());
        if (relay_copy(job, src, jstr(src, "installPath"), host, tmp,
                       json_integer_value(json_object_get(
                                              img, "actualSize"))) < 0) {
            goto out;
        }
    }
    r = hostmgr_call(host_uuid, "image.check",
                     json_pack("{s:s, s:s, s:s?, s:I}", "path", tmp,
                               "format", strcmp(jstr(img, "format"), "iso")
                               ? jstr(img, "format") : "raw",
                               "sha256", jstr(img, "sha256Sum"),
                               "maxVirtualSize",
                               (json_int_t) MAX_VIRTUAL_SIZE), 300000);
    if (!r) {
        error_prefix("checking the cached copy: ");
        hostmgr_call(host_uuid, "volume.delete",
                     json_pack("{s:s}", "path", tmp), 30000);
        goto out;
    }
    json_decref(r);
    r = hostmgr_call(host_uuid, "image.commit",
                     json_pack("{s:s, s:s}", "tmpPath", tmp, "path", final),
                     30000);
    if (!r) {
        goto out;
    }
    json_decref(r);
    if (db_write(db, "INSERT OR REPLACE INTO imageCache "
                 "(primaryStorageUuid, imageUuid, installPath, status, "
                 "createDate) VALUES (?1, ?2, ?3, 'Ready', ?4)", "sssi",
                 ps_uuid, image_uuid, final, time_wall_msec()) < 0) {
        goto out;
    }
    job_progress(job, "image '%s' cached on primary storage '%s'",
                 jstr(img, "name"), jstr(ps, "name"));
    path = xstrdup(final);

out:
    pthread_mutex_unlock(&cache_mutex);
    json_decref(src);
    json_decref(img);
    json_decref(ps);
    json_decref(host);
    return path;
}
