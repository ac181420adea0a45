/* test-playbook.c: unit tests of mgmt/playbook.c, the playbook runner.
 *
 * The runner's transport here is local: each command runs as
 * `/bin/sh -c CMD` in a child with its stdin fed from a pipe, against a
 * temporary directory, so the modules' real shell scripts run and no root
 * is needed (a service case starts and stops a `sleep` through a pidfile).
 * Playbooks that would touch the machine itself (kvm-host.yaml,
 * sftp-backup-storage.yaml) run against a fake transport that answers
 * every module "nothing to change" and records the commands.  The rpm
 * (dnf, yum) and systemd paths, which this Debian machine cannot run, go
 * to FAKE hosts (canned Fedora 40 and CentOS 7 facts, fake rpm, dnf, yum
 * and systemctl scripts, a private /run): see "FAKE rpm/systemd hosts". */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmstack/error.h"
#include "kvmstack/util.h"
#include "playbook.h"

/* ---- A local transport: /bin/sh -c with a stdin pipe ---- */

struct local {
    int n_exec;                 /* Commands run so far. */
};

static int
local_exec(void *aux, const char *cmd, const void *in, size_t in_len,
           struct sbuf *out, struct sbuf *err, int *status)
{
    struct local *l = aux;
    struct sigaction ign = { .sa_handler = SIG_IGN };
    struct sigaction old;
    int pin[2];
    int pout[2];
    int perr[2];
    const char *p = in;
    pid_t pid;
    int wstatus;

    l->n_exec++;
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)
        || pipe2(perr, O_CLOEXEC)) {
        error_report(PROBLEM_HOST_UNREACHABLE, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        error_report(PROBLEM_HOST_UNREACHABLE, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    sigaction(SIGPIPE, &ign, &old);
    if (!in || !in_len) {
        close(pin[1]);
        pin[1] = -1;
    }
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd fds[3] = {
            { .fd = pout[0], .events = POLLIN },
            { .fd = perr[0], .events = POLLIN },
            { .fd = pin[1], .events = POLLOUT },
        };
        char buf[16384];

        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (int i = 0; i < 2; i++) {
            int *fd = i ? &perr[0] : &pout[0];
            ssize_t n;

            if (*fd < 0 || !fds[i].revents) {
                continue;
            }
            n = read(*fd, buf, sizeof buf);
            if (n > 0) {
                sbuf_add(i ? err : out, buf, (size_t) n);
            } else if (n == 0 || errno != EINTR) {
                close(*fd);
                *fd = -1;
            }
        }
        if (pin[1] >= 0 && fds[2].revents) {
            ssize_t n = write(pin[1], p, in_len);

            if (n > 0) {
                p += n;
                in_len -= (size_t) n;
            }
            if ((n < 0 && errno != EINTR) || !in_len) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
    }
    if (pin[1] >= 0) {
        close(pin[1]);
    }
    sigaction(SIGPIPE, &old, NULL);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        continue;
    }
    *status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
                                 : 128 + WTERMSIG(wstatus);
    return 0;
}

/* ---- Fixture: a temporary directory, the transport, a recap ---- */

struct fixture {
    char dir[64];
    struct local local;
    struct playbook_target target;
    struct playbook_recap recap;
    json_t *vars;               /* Extra vars: dir, and what a case adds. */
};

static void
fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/kvmstack-playbook-XXXXXX");
    if (!mkdtemp(f->dir)) {
        abort();
    }
    f->target.exec = local_exec;
    f->target.exec_aux = &f->local;
    f->vars = json_pack("{s:s}", "dir", f->dir);
}

static void
fixture_destroy(struct fixture *f)
{
    char *cmd = xasprintf("rm -rf '%s'", f->dir);

    if (system(cmd)) {
        fprintf(stderr, "cannot remove %s\n", f->dir);
    }
    free(cmd);
    playbook_recap_destroy(&f->recap);
    json_decref(f->vars);
}

/* Writes 'text' to 'name' in the fixture's directory; returns the path
 * (caller frees). */
static char *
fixture_write(const struct fixture *f, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    FILE *file = fopen(path, "w");

    if (!file || fputs(text, file) < 0 || fclose(file)) {
        abort();
    }
    return path;
}

/* Reads 'name' in the fixture's directory; NULL if it cannot (caller
 * frees). */
static char *
fixture_read(const struct fixture *f, const char *name)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    FILE *file = fopen(path, "r");
    struct sbuf b;
    char buf[4096];
    size_t n;

    free(path);
    if (!file) {
        return NULL;
    }
    sbuf_init(&b);
    while ((n = fread(buf, 1, sizeof buf, file)) > 0) {
        sbuf_add(&b, buf, n);
    }
    fclose(file);
    return sbuf_take(&b);
}

static bool
fixture_exists(const struct fixture *f, const char *name)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    struct stat st;
    bool exists = lstat(path, &st) == 0;

    free(path);
    return exists;
}

static int
fixture_mode(const struct fixture *f, const char *name)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    struct stat st;
    int mode = stat(path, &st) ? -1 : (int) (st.st_mode & 07777);

    free(path);
    return mode;
}

/* Runs playbook file 'name' of the fixture's directory. */
static int
fixture_run(struct fixture *f, const char *name)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    int rc;

    playbook_recap_destroy(&f->recap);
    error_reset();
    rc = playbook_run(path, &f->target, f->vars, &f->recap);
    free(path);
    return rc;
}

/* Defines case 'name' whose body runs with a fresh fixture. */
#define FIXTURE_CASE(NAME)                              \
    static void NAME##_body(struct fixture *f);         \
    static void                                         \
    NAME(const void *aux)                               \
    {                                                   \
        struct fixture f;                               \
                                                        \
        (void) aux;                                     \
        fixture_init(&f);                               \
        NAME##_body(&f);                                \
        fixture_destroy(&f);                            \
    }                                                   \
    static void                                         \
    NAME##_body(struct fixture *f)

#define CHECK_RUN_OK(F, NAME)                                          \
    do {                                                               \
        int rc_ = fixture_run(F, NAME);                                \
                                                                       \
        CHECK_MSG(rc_ == 0, "run of %s failed: %s [%s]", NAME,         \
                  error_last_message(),                                \
                  (F)->recap.failed_detail ? (F)->recap.failed_detail  \
                                           : "");                      \
    } while (0)

#define CHECK_CONTAINS(HAY, NEEDLE)                                    \
    do {                                                               \
        const char *h_ = (HAY);                                        \
                                                                       \
        CHECK_MSG(h_ && strstr(h_, NEEDLE), "'%s' lacks '%s'",          \
                  h_ ? h_ : "(null)", NEEDLE);                         \
    } while (0)

/* ---- shell_quote ---- */

static const char *const quote_cases[] = {
    "", "plain", "two words", "it's", "'", "''", "'\\''", "$(id)",
    "`id`", "a\nb\n", "\\", "\"", "*", "$HOME", "; rm -rf /tmp/x; '",
    "-n", "%s%d", "tab\there", "\"'$`\\!{}()[];&|<>#~",
};

static void
test_shell_quote(const void *aux)
{
    struct local l = { 0 };

    (void) aux;
    for (size_t i = 0; i < ARRAY_SIZE(quote_cases); i++) {
        char *q = shell_quote(quote_cases[i]);
        char *cmd = xasprintf("printf '%%s' %s", q);
        struct sbuf out;
        struct sbuf err;
        int status = -1;
        int rc;

        sbuf_init(&out);
        sbuf_init(&err);
        rc = local_exec(&l, cmd, NULL, 0, &out, &err, &status);
        CHECK(q[0] == '\'' && q[strlen(q) - 1] == '\'');
        CHECK_INT(rc, 0);
        CHECK_INT(status, 0);
        CHECK_STR(out.s, quote_cases[i]);
        sbuf_destroy(&out);
        sbuf_destroy(&err);
        free(cmd);
        free(q);
    }
}

/* ---- Modules, idempotence ---- */

static const char modules_yaml[] =
    "- name: modules\n"
    "  hosts: all\n"
    "  vars:\n"
    "    greeting: hello\n"
    "    src_file: src.txt\n"
    "  tasks:\n"
    "    - name: a directory\n"
    "      file:\n"
    "        path: \"{{ dir }}/d\"\n"
    "        state: directory\n"
    "        mode: \"0750\"\n"
    "    - name: copy content\n"
    "      copy:\n"
    "        content: \"greeting={{ greeting }}\\n\"\n"
    "        dest: \"{{ dir }}/d/content.txt\"\n"
    "        mode: \"0640\"\n"
    "    - name: copy a local file\n"
    "      copy:\n"
    "        src: \"{{ src_file }}\"\n"
    "        dest: \"{{ dir }}/d/src-copy.txt\"\n"
    "    - name: template\n"
    "      ansible.builtin.template:\n"
    "        src: tmpl.j2\n"
    "        dest: \"{{ dir }}/d/tmpl.txt\"\n"
    "    - name: lineinfile creates the file\n"
    "      lineinfile:\n"
    "        path: \"{{ dir }}/d/conf\"\n"
    "        line: a = 1\n"
    "        create: yes\n"
    "    - name: lineinfile with regexp\n"
    "      lineinfile:\n"
    "        path: \"{{ dir }}/d/conf\"\n"
    "        regexp: '^b[[:space:]]*='\n"
    "        line: b = 2\n"
    "    - name: lineinfile absent\n"
    "      lineinfile:\n"
    "        path: \"{{ dir }}/d/conf\"\n"
    "        line: zzz\n"
    "        state: absent\n"
    "    - name: command with creates\n"
    "      command: touch {{ dir }}/d/created\n"
    "      args:\n"
    "        creates: \"{{ dir }}/d/created\"\n"
    "    - name: shell with creates\n"
    "      shell: echo \"{{ greeting }} world\" > {{ dir }}/d/shell.txt\n"
    "      args:\n"
    "        creates: \"{{ dir }}/d/shell.txt\"\n"
    "    - name: touch\n"
    "      file:\n"
    "        path: \"{{ dir }}/d/touched\"\n"
    "        state: touch\n"
    "    - name: absent\n"
    "      file:\n"
    "        path: \"{{ dir }}/d/nothing\"\n"
    "        state: absent\n";

FIXTURE_CASE(test_modules_idempotent)
{
    char *path = NULL;
    char *text = NULL;

    free(fixture_write(f, "src.txt", "from src\n"));
    free(fixture_write(f, "tmpl.j2", "name={{ greeting }}\n"
                       "family={{ os_family }}\n"));
    free(fixture_write(f, "modules.yaml", modules_yaml));

    CHECK_RUN_OK(f, "modules.yaml");
    CHECK_INT(f->recap.changed, 9);
    CHECK_INT(f->recap.ok, 12);         /* Facts and every task. */
    CHECK_INT(f->recap.failed, 0);
    CHECK_INT(f->recap.skipped, 0);
    CHECK_INT(fixture_mode(f, "d"), 0750);
    CHECK_INT(fixture_mode(f, "d/content.txt"), 0640);
    CHECK_INT(fixture_mode(f, "d/src-copy.txt"), 0644);
    text = fixture_read(f, "d/content.txt");
    CHECK_STR(text, "greeting=hello\n");
    free(text);
    text = fixture_read(f, "d/src-copy.txt");
    CHECK_STR(text, "from src\n");
    free(text);
    text = fixture_read(f, "d/tmpl.txt");
    CHECK_CONTAINS(text, "name=hello\nfamily=");
    free(text);
    text = fixture_read(f, "d/conf");
    CHECK_STR(text, "a = 1\nb = 2\n");
    free(text);
    text = fixture_read(f, "d/shell.txt");
    CHECK_STR(text, "hello world\n");
    free(text);
    CHECK(fixture_exists(f, "d/created"));
    CHECK(fixture_exists(f, "d/touched"));

    /* The second run changes nothing, one command per task. */
    f->local.n_exec = 0;
    CHECK_RUN_OK(f, "modules.yaml");
    CHECK_INT(f->recap.changed, 0);
    CHECK_INT(f->recap.ok, 12);
    CHECK_INT(f->local.n_exec, 12);

    /* The regexp replaces the matching line in place; a changed file is
     * rewritten, an edited mode restored. */
    free(fixture_write(f, "d/conf", "b=5\na = 1\n"));
    free(fixture_write(f, "d/content.txt", "tampered\n"));
    path = xasprintf("%s/d", f->dir);
    CHECK(chmod(path, 0700) == 0);
    free(path);
    CHECK_RUN_OK(f, "modules.yaml");
    CHECK_INT(f->recap.changed, 3);
    text = fixture_read(f, "d/conf");
    CHECK_STR(text, "b = 2\na = 1\n");
    free(text);
    text = fixture_read(f, "d/content.txt");
    CHECK_STR(text, "greeting=hello\n");
    free(text);
    CHECK_INT(fixture_mode(f, "d"), 0750);
}

/* A copy bigger than what goes with the check: the unchanged file costs
 * one command and no transfer. */
FIXTURE_CASE(test_copy_large)
{
    struct sbuf big;
    char *text;

    sbuf_init(&big);
    for (int i = 0; i < 20000; i++) {
        sbuf_addf(&big, "line %d\n", i);
    }
    free(fixture_write(f, "big.bin", big.s));
    free(fixture_write(f, "copy.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: big copy\n"
                       "      copy:\n"
                       "        src: big.bin\n"
                       "        dest: \"{{ dir }}/big.copy\"\n"
                       "        mode: \"0755\"\n"));
    f->local.n_exec = 0;
    CHECK_RUN_OK(f, "copy.yaml");
    CHECK_INT(f->recap.changed, 1);
    CHECK_INT(f->local.n_exec, 3);      /* Facts, check, transfer. */
    text = fixture_read(f, "big.copy");
    CHECK(text && !strcmp(text, big.s));
    free(text);
    CHECK_INT(fixture_mode(f, "big.copy"), 0755);
    f->local.n_exec = 0;
    CHECK_RUN_OK(f, "copy.yaml");
    CHECK_INT(f->recap.changed, 0);
    CHECK_INT(f->local.n_exec, 2);      /* Facts, check. */
    sbuf_destroy(&big);
}

/* ---- Failure ---- */

FIXTURE_CASE(test_failed_task)
{
    free(fixture_write(f, "fail.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: fine\n"
                       "      command: /bin/true\n"
                       "    - name: boom\n"
                       "      shell: echo first >&2; echo oops >&2; exit 3\n"
                       "    - name: never\n"
                       "      file:\n"
                       "        path: \"{{ dir }}/never\"\n"
                       "        state: touch\n"));
    CHECK_INT(fixture_run(f, "fail.yaml"), -1);
    CHECK_INT(error_last_problem(), PROBLEM_INTERNAL_ERROR);
    CHECK_CONTAINS(error_last_message(), "task 'boom' failed");
    CHECK_CONTAINS(error_last_message(), "exit code 3");
    CHECK_CONTAINS(error_last_message(), "oops");
    CHECK_INT(f->recap.failed, 1);
    CHECK_INT(f->recap.ok, 2);
    CHECK_STR(f->recap.failed_task, "boom");
    CHECK_CONTAINS(f->recap.failed_detail, "task: boom");
    CHECK_CONTAINS(f->recap.failed_detail, "exit code: 3");
    CHECK_CONTAINS(f->recap.failed_detail, "first\noops");
    CHECK_CONTAINS(f->recap.failed_detail, "exit 3");
    CHECK(!fixture_exists(f, "never"));
}

/* An undefined variable fails the task that uses it, by name. */
FIXTURE_CASE(test_undefined_var)
{
    free(fixture_write(f, "undef.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: uses nope\n"
                       "      file:\n"
                       "        path: \"{{ dir }}/{{ nope.x }}\"\n"
                       "        state: touch\n"));
    CHECK_INT(fixture_run(f, "undef.yaml"), -1);
    CHECK_CONTAINS(error_last_message(), "task 'uses nope' failed");
    CHECK_CONTAINS(error_last_message(), "'nope' is undefined");
    CHECK_STR(f->recap.failed_task, "uses nope");
    free(fixture_write(f, "attr.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: echo\n"
                       "      command: echo hi\n"
                       "      register: r\n"
                       "    - name: uses r.nope\n"
                       "      command: /bin/true\n"
                       "      when: r.nope == 1\n"));
    CHECK_INT(fixture_run(f, "attr.yaml"), -1);
    CHECK_CONTAINS(error_last_message(), "task 'uses r.nope' failed");
    CHECK_CONTAINS(error_last_message(), "'r' has no attribute 'nope'");
}

/* ---- when, register, changed_when, failed_when, ignore_errors ---- */

static const struct {
    const char *expr;
    bool runs;
} when_cases[] = {
    { "num == 5", true },
    { "num == '5'", true },
    { "num > 3 and word == 'abc'", true },
    { "num >= 5 and num <= 5 and num < 6", true },
    { "not flag", true },
    { "flag or num == 5", true },
    { "'b' in list", true },
    { "'z' not in list", true },
    { "'bc' in word", true },
    { "missing is not defined", true },
    { "missing is undefined", true },
    { "num is defined and (flag or not flag)", true },
    { "word | upper == 'ABC'", true },
    { "missing | default('x') == 'x'", true },
    { "list | length == 2", true },
    { "dict.k == 'v' and dict['k'] == 'v' and list[1] == 'b'", true },
    { "pkg_mgr in ['apt', 'dnf', 'yum', 'unknown']", true },
    { "ansible_facts['os_family'] == os_family", true },
    { "has_systemd is defined and architecture != ''", true },
    { "yes_string | bool", true },
    { "num != 5", false },
    { "flag", false },
    { "word == 'abd'", false },
    { "num < 3 or word == 'x'", false },
    { "not (num == 5)", false },
    { "not num == 5", false },
    { "'c' in list", false },
    { "false", false },
    { "none_value", false },
};

FIXTURE_CASE(test_when)
{
    struct sbuf y;

    sbuf_init(&y);
    sbuf_addstr(&y,
                "- hosts: all\n"
                "  vars:\n"
                "    num: 5\n"
                "    word: abc\n"
                "    flag: no\n"
                "    yes_string: 'yes'\n"
                "    none_value:\n"
                "    list: [a, b]\n"
                "    dict: {k: v}\n"
                "  tasks:\n");
    for (size_t i = 0; i < ARRAY_SIZE(when_cases); i++) {
        sbuf_addf(&y,
                  "    - name: case %zu\n"
                  "      command: /bin/true\n"
                  "      register: r%zu\n"
                  "      when: \"%s\"\n", i, i, when_cases[i].expr);
    }
    sbuf_addstr(&y,
                "    - name: list of conditions\n"
                "      command: /bin/true\n"
                "      when: [true, \"num == 4\"]\n"
                "    - name: literal true\n"
                "      command: /bin/true\n"
                "      when: true\n");
    free(fixture_write(f, "when.yaml", y.s));
    sbuf_destroy(&y);
    CHECK_RUN_OK(f, "when.yaml");
    for (size_t i = 0; i < ARRAY_SIZE(when_cases); i++) {
        char name[16];
        json_t *r;

        snprintf(name, sizeof name, "r%zu", i);
        r = json_object_get(f->recap.registered, name);
        CHECK_MSG(r, "no result for '%s'", when_cases[i].expr);
        CHECK_MSG(json_is_true(json_object_get(r, "skipped"))
                  == !when_cases[i].runs, "when: %s: expected %s",
                  when_cases[i].expr,
                  when_cases[i].runs ? "to run" : "a skip");
    }
    CHECK_INT(f->recap.skipped, 10);
    CHECK_INT(f->recap.changed, 21);
}

FIXTURE_CASE(test_register)
{
    char line[128];

    free(fixture_write(f, "register.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: say hello\n"
                       "      command: echo hello world\n"
                       "      register: hello\n"
                       "      changed_when: false\n"
                       "    - name: uses rc and stdout\n"
                       "      command: /bin/true\n"
                       "      register: used\n"
                       "      when: hello.rc == 0 and 'world' in "
                       "hello.stdout\n"
                       "    - name: only if changed\n"
                       "      command: /bin/true\n"
                       "      register: notrun\n"
                       "      when: hello is changed\n"
                       "    - name: exit seven is fine\n"
                       "      shell: exit 7\n"
                       "      register: seven\n"
                       "      failed_when: seven.rc != 7\n"
                       "      changed_when: seven.rc == 0\n"
                       "    - name: ignored failure\n"
                       "      command: /bin/false\n"
                       "      register: ign\n"
                       "      ignore_errors: yes\n"
                       "    - name: sees the others\n"
                       "      command: /bin/true\n"
                       "      register: after\n"
                       "      when:\n"
                       "        - seven.rc == 7 and seven is succeeded\n"
                       "        - hello.stdout_lines[0] == 'hello world'\n"
                       "        - ign is failed and notrun is skipped\n"));
    CHECK_RUN_OK(f, "register.yaml");
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "hello"),
              "hello world\n");
    CHECK(json_is_true(json_object_get(
                           json_object_get(f->recap.registered, "after"),
                           "changed")));
    CHECK(json_is_true(json_object_get(
                           json_object_get(f->recap.registered, "notrun"),
                           "skipped")));
    CHECK_INT(json_integer_value(json_object_get(
                                     json_object_get(f->recap.registered,
                                                     "ign"), "rc")), 1);
    CHECK_INT(f->recap.skipped, 1);
    CHECK_INT(f->recap.ignored, 1);
    CHECK_INT(f->recap.failed, 0);
    CHECK_INT(f->recap.changed, 2);     /* uses rc, sees the others. */
    CHECK_INT(f->recap.ok, 6);
    CHECK_STR(playbook_recap_line(&f->recap, line, sizeof line),
              "ok=6 changed=2 failed=0 skipped=1 ignored=1");
}

/* failed_when: true fails a command that succeeded. */
FIXTURE_CASE(test_failed_when)
{
    free(fixture_write(f, "fw.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: looks fine\n"
                       "      command: /bin/true\n"
                       "      failed_when: true\n"));
    CHECK_INT(fixture_run(f, "fw.yaml"), -1);
    CHECK_CONTAINS(error_last_message(), "task 'looks fine' failed");
    CHECK_CONTAINS(f->recap.failed_detail, "exit code: 0");
}

/* ---- Handlers ---- */

FIXTURE_CASE(test_handlers)
{
    char *text;

    free(fixture_write(f, "handlers.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: change one\n"
                       "      command: touch {{ dir }}/h1\n"
                       "      args:\n"
                       "        creates: \"{{ dir }}/h1\"\n"
                       "      notify: restart thing\n"
                       "    - name: change two\n"
                       "      command: touch {{ dir }}/h2\n"
                       "      args:\n"
                       "        creates: \"{{ dir }}/h2\"\n"
                       "      notify: [restart thing]\n"
                       "    - name: no change\n"
                       "      command: /bin/true\n"
                       "      changed_when: false\n"
                       "      notify: other handler\n"
                       "  handlers:\n"
                       "    - name: restart thing\n"
                       "      shell: echo ran >> {{ dir }}/handler.log\n"
                       "    - name: other handler\n"
                       "      shell: echo other >> {{ dir }}/other.log\n"));
    CHECK_RUN_OK(f, "handlers.yaml");
    CHECK_INT(f->recap.changed, 3);
    text = fixture_read(f, "handler.log");
    CHECK_STR(text, "ran\n");
    free(text);
    CHECK(!fixture_exists(f, "other.log"));

    CHECK_RUN_OK(f, "handlers.yaml");
    CHECK_INT(f->recap.changed, 0);
    text = fixture_read(f, "handler.log");
    CHECK_STR(text, "ran\n");
    free(text);
}

/* ---- Quoting of values ---- */

FIXTURE_CASE(test_injection)
{
    char *evil = xasprintf("'; rm -rf %s/sentinel; '", f->dir);
    char *evil2 = xasprintf("$(touch %s/pwned) `touch %s/pwned2` \"; touch "
                            "%s/pwned3; \" \\' ${IFS}", f->dir, f->dir,
                            f->dir);
    char *expect = NULL;
    char *text = NULL;

    free(fixture_write(f, "sentinel", "keep\n"));
    free(fixture_write(f, "evil.j2", "value={{ evil }}\n"));
    free(fixture_write(f, "evil.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - template:\n"
                       "        src: evil.j2\n"
                       "        dest: \"{{ dir }}/evil.txt\"\n"
                       "    - copy:\n"
                       "        content: \"{{ evil }}|{{ evil2 }}\"\n"
                       "        dest: \"{{ dir }}/evil-copy.txt\"\n"
                       "    - shell: >-\n"
                       "        printf '%s\\n' {{ evil }} \"{{ evil2 }}\"\n"
                       "        '{{ evil }}' > {{ dir }}/evil-shell.txt\n"
                       "    - command: printf %s {{ evil2 }}\n"
                       "      register: cmd\n"
                       "    - lineinfile:\n"
                       "        path: \"{{ dir }}/evil-line.txt\"\n"
                       "        line: \"{{ evil2 }}\"\n"
                       "        regexp: \"{{ evil }}\"\n"
                       "        create: yes\n"
                       "    - file:\n"
                       "        path: \"{{ dir }}/{{ evil2 | length }}\"\n"
                       "        state: touch\n"));
    json_object_set_new(f->vars, "evil", json_string(evil));
    json_object_set_new(f->vars, "evil2", json_string(evil2));
    CHECK_RUN_OK(f, "evil.yaml");
    CHECK(fixture_exists(f, "sentinel"));
    CHECK(!fixture_exists(f, "pwned"));
    CHECK(!fixture_exists(f, "pwned2"));
    CHECK(!fixture_exists(f, "pwned3"));
    text = fixture_read(f, "evil.txt");
    expect = xasprintf("value=%s\n", evil);
    CHECK_STR(text, expect);
    free(text);
    free(expect);
    text = fixture_read(f, "evil-copy.txt");
    expect = xasprintf("%s|%s", evil, evil2);
    CHECK_STR(text, expect);
    free(text);
    free(expect);
    text = fixture_read(f, "evil-shell.txt");
    expect = xasprintf("%s\n%s\n%s\n", evil, evil2, evil);
    CHECK_STR(text, expect);
    free(text);
    free(expect);
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "cmd"), evil2);
    text = fixture_read(f, "evil-line.txt");
    expect = xasprintf("%s\n", evil2);
    CHECK_STR(text, expect);
    free(text);
    free(expect);
    free(evil);
    free(evil2);
}

/* ---- Services without systemd: a pidfile and a daemon command ---- */

/* True if process 'pid' exists and is not a zombie (a killed daemon stays
 * one until PID 1 reaps it, which can take seconds here). */
static bool
pid_alive(int pid)
{
    char *path = xasprintf("/proc/%d/stat", pid);
    FILE *file = fopen(path, "r");
    char buf[512];
    const char *state;
    size_t n = 0;

    free(path);
    if (file) {
        n = fread(buf, 1, sizeof buf - 1, file);
        fclose(file);
    }
    buf[n] = '\0';
    state = strrchr(buf, ')');
    return state && state[1] == ' ' && state[2] != 'Z';
}

FIXTURE_CASE(test_service_plain)
{
    char *pid;

    if (access("/run/systemd/system", F_OK) == 0) {
        return;                 /* systemd would take the service. */
    }
    free(fixture_write(f, "svc.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: sleeper runs\n"
                       "      service:\n"
                       "        name: kvmstack-test-sleeper\n"
                       "        state: \"{{ want }}\"\n"
                       "        pidfile: \"{{ dir }}/pid\"\n"
                       "        daemon: sh -c 'sleep 60 & echo $! > "
                       "{{ dir }}/pid'\n"));
    json_object_set_new(f->vars, "want", json_string("started"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_INT(f->recap.changed, 1);
    pid = fixture_read(f, "pid");
    CHECK(pid && atoi(pid) > 0 && pid_alive(atoi(pid)));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_INT(f->recap.changed, 0);
    json_object_set_new(f->vars, "want", json_string("stopped"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_INT(f->recap.changed, 1);
    CHECK(!pid_alive(atoi(pid)));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_INT(f->recap.changed, 0);
    free(pid);
}

/* ---- sysctl: compared, not written when equal; persisted ---- */

FIXTURE_CASE(test_sysctl)
{
    char *text;

    free(fixture_write(f, "conf", "# sysctls\nkernel.ostype = Other\n"));
    free(fixture_write(f, "sysctl.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: compare only\n"
                       "      sysctl:\n"
                       "        name: kernel.ostype\n"
                       "        value: Linux\n"
                       "        sysctl_file: ''\n"
                       "    - name: persist\n"
                       "      sysctl:\n"
                       "        name: kernel.ostype\n"
                       "        value: Linux\n"
                       "        sysctl_file: \"{{ dir }}/conf\"\n"
                       "    - name: unknown key\n"
                       "      sysctl:\n"
                       "        name: net.kvmstack.none\n"
                       "        value: '0'\n"
                       "        sysctl_file: ''\n"
                       "      ignore_errors: yes\n"));
    CHECK_RUN_OK(f, "sysctl.yaml");
    CHECK_INT(f->recap.changed, 1);
    CHECK_INT(f->recap.ignored, 1);
    text = fixture_read(f, "conf");
    CHECK_STR(text, "# sysctls\nkernel.ostype=Linux\n");
    free(text);
    CHECK_RUN_OK(f, "sysctl.yaml");
    CHECK_INT(f->recap.changed, 0);
}

/* ---- package: the check alone (nothing to install or remove) ---- */

FIXTURE_CASE(test_package_check)
{
    if (access("/usr/bin/dpkg-query", X_OK) != 0) {
        return;                 /* Not an apt machine. */
    }
    free(fixture_write(f, "pkg.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: installed already\n"
                       "      package:\n"
                       "        name: [dpkg, coreutils]\n"
                       "        update_cache: yes\n"
                       "      register: inst\n"
                       "    - name: absent already\n"
                       "      package:\n"
                       "        name: kvmstack-no-such-package, dpkg-nope\n"
                       "        state: absent\n"
                       "    - name: bad name\n"
                       "      package: {name: \"x;reboot\", state: absent}\n"
                       "      register: bad\n"
                       "      ignore_errors: yes\n"));
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_INT(f->recap.changed, 0);
    CHECK_INT(f->recap.ignored, 1);
    CHECK(json_is_false(json_object_get(
                            json_object_get(f->recap.registered, "inst"),
                            "failed")));
    CHECK_INT(json_integer_value(json_object_get(
                                     json_object_get(f->recap.registered,
                                                     "bad"), "rc")), -1);
}

/* ---- FAKE rpm/systemd hosts: the dnf, yum and systemd paths ---- */

/* FAKES.  This Debian machine has no RPM repositories and does not run
 * systemd as PID 1, so the package module's rpm path (package_rpm_sh) and
 * the service module's systemd branch can run only against fakes: a
 * transport that answers the facts command with a canned Fedora 40 (or
 * CentOS 7) host and runs every other command in a private mount
 * namespace with a tmpfs on /run holding /run/systemd/system, and with
 * PATH starting at fake `rpm`, `dnf`, `yum` and `systemctl` scripts of
 * the fixture.  The real tests beside them are test_package_check (the
 * apt path against this machine's dpkg) and test_service_plain (the
 * plain-init branch, a real daemon).  The machine's own /run is never
 * touched: /run/systemd/system must not appear here, or apt and dpkg
 * would start calling systemctl. */

/* Canned facts of a Fedora 40 server: systemd, dnf (and yum, which is
 * dnf there), no ID_LIKE. */
static const char fake_fedora_facts[] =
    "arch=x86_64\n"
    "systemd=1\n"
    "kvm=1\n"
    "mgr=dnf\n"
    "mgr=yum\n"
    "KVMSTACK-OS-RELEASE\n"
    "NAME=\"Fedora Linux\"\n"
    "VERSION=\"40 (Server Edition)\"\n"
    "ID=fedora\n"
    "VERSION_ID=40\n"
    "VERSION_CODENAME=\"\"\n"
    "PLATFORM_ID=\"platform:f40\"\n"
    "PRETTY_NAME=\"Fedora Linux 40 (Server Edition)\"\n"
    "CPE_NAME=\"cpe:/o:fedoraproject:fedora:40\"\n"
    "VARIANT_ID=server\n";

/* Canned facts of a CentOS 7 host: systemd, yum only. */
static const char fake_centos7_facts[] =
    "arch=x86_64\n"
    "systemd=1\n"
    "mgr=yum\n"
    "KVMSTACK-OS-RELEASE\n"
    "NAME=\"CentOS Linux\"\n"
    "VERSION=\"7 (Core)\"\n"
    "ID=\"centos\"\n"
    "ID_LIKE=\"rhel fedora\"\n"
    "VERSION_ID=\"7\"\n"
    "PRETTY_NAME=\"CentOS Linux 7 (Core)\"\n";

/* FAKE rpm: answers `rpm -q --quiet --whatprovides NAME` from the fake's
 * state (a file per installed name); anything else is an error. */
static const char fake_rpm_script[] =
    "#!/bin/sh\n"
    "# FAKE rpm of tests/unit/test-playbook.c (no RPM database here).\n"
    "s=${0%/*}/../fake\n"
    "echo \"rpm $*\" >> \"$s/calls.log\"\n"
    "if [ \"$#\" != 4 ] || [ \"$1 $2 $3\" != \"-q --quiet --whatprovides\" ]"
    "; then\n"
    "    echo \"fake rpm: unexpected: $*\" >&2\n"
    "    exit 2\n"
    "fi\n"
    "[ -e \"$s/installed/$4\" ]\n";

/* FAKE dnf and yum (one script, named by $0): install -y -q, remove -y
 * -q, makecache -q on the fake's state; an install naming
 * no-such-package fails whole, with dnf's message. */
static const char fake_pm_script[] =
    "#!/bin/sh\n"
    "# FAKE dnf/yum of tests/unit/test-playbook.c (no RPM repositories"
    " here).\n"
    "s=${0%/*}/../fake\n"
    "pm=${0##*/}\n"
    "echo \"$pm $*\" >> \"$s/calls.log\"\n"
    "v=$1\n"
    "shift\n"
    "case $v in\n"
    "makecache)\n"
    "    if [ \"$*\" = -q ]; then exit 0; fi;;\n"
    "install|remove)\n"
    "    if [ \"$1 $2\" = \"-y -q\" ] && [ \"$#\" -gt 2 ]; then\n"
    "        shift 2\n"
    "        for n do\n"
    "            if [ \"$v\" = install ] && [ \"$n\" = no-such-package ]; then"
    "\n"
    "                echo \"Last metadata expiration check: 0:01:02 ago.\""
    " >&2\n"
    "                echo \"No match for argument: $n\" >&2\n"
    "                echo \"Error: Unable to find a match: $n\" >&2\n"
    "                exit 1\n"
    "            fi\n"
    "        done\n"
    "        for n do\n"
    "            if [ \"$v\" = install ]; then : > \"$s/installed/$n\"\n"
    "            else rm -f -- \"$s/installed/$n\"; fi\n"
    "        done\n"
    "        exit 0\n"
    "    fi;;\n"
    "esac\n"
    "echo \"fake $pm: unexpected: $v $*\" >&2\n"
    "exit 2\n";

/* FAKE systemctl: per-unit enabled and active flags in the fake's state;
 * refuses, like the real one, where /run/systemd/system is missing;
 * reload of an inactive unit fails as systemd's does. */
static const char fake_systemctl_script[] =
    "#!/bin/sh\n"
    "# FAKE systemctl of tests/unit/test-playbook.c (systemd is not PID 1"
    " here).\n"
    "s=${0%/*}/../fake\n"
    "echo \"systemctl $*\" >> \"$s/calls.log\"\n"
    "if [ ! -d /run/systemd/system ]; then\n"
    "    echo \"System has not been booted with systemd as init system"
    " (PID 1). Can't operate.\" >&2\n"
    "    exit 1\n"
    "fi\n"
    "v=$1\n"
    "shift\n"
    "q=0\n"
    "if [ \"$1\" = --quiet ]; then q=1; shift; fi\n"
    "if [ \"$1\" = -- ]; then shift; fi\n"
    "if [ \"$#\" != 1 ]; then\n"
    "    echo \"fake systemctl: unexpected: $v $*\" >&2\n"
    "    exit 2\n"
    "fi\n"
    "u=$s/units/$1\n"
    "say() { if [ \"$q\" = 0 ]; then echo \"$1\"; fi; }\n"
    "case $v in\n"
    "is-enabled)\n"
    "    if [ -e \"$u.enabled\" ]; then say enabled\n"
    "    else say disabled; exit 1; fi;;\n"
    "is-active)\n"
    "    if [ -e \"$u.active\" ]; then say active\n"
    "    else say inactive; exit 3; fi;;\n"
    "enable) : > \"$u.enabled\";;\n"
    "disable) rm -f -- \"$u.enabled\";;\n"
    "start|restart) : > \"$u.active\";;\n"
    "stop) rm -f -- \"$u.active\";;\n"
    "reload)\n"
    "    if [ ! -e \"$u.active\" ]; then\n"
    "        echo \"Job for $1 invalid.\" >&2\n"
    "        exit 1\n"
    "    fi;;\n"
    "*)\n"
    "    echo \"fake systemctl: unexpected: $v $*\" >&2\n"
    "    exit 2;;\n"
    "esac\n";

/* The fake host's transport state. */
struct fake_rpm_host {
    struct local local;         /* Runs every command but the facts. */
    const char *facts;          /* Canned output of the facts command. */
    const char *dir;            /* The fixture's directory. */
    int n_facts;                /* Facts commands answered. */
};

/* Answers the facts command (known by its KVMSTACK-OS-RELEASE marker)
 * with 'facts'; runs any other command locally inside
 * `unshare -m` (as an unprivileged user also -r), after a tmpfs on /run
 * with /run/systemd/system, with the fixture's bin/ first in PATH. */
static int
fake_rpm_host_exec(void *aux, const char *cmd, const void *in,
                   size_t in_len, struct sbuf *out, struct sbuf *err,
                   int *status)
{
    static const char inner[] =
        "mount -n -t tmpfs kvmstack-fake-run /run"
        " && mkdir -p /run/systemd/system || exit 125\n"
        "PATH=$0/bin:$PATH\n"
        "export PATH\n"
        "exec /bin/sh -c \"$1\"\n";
    struct fake_rpm_host *h = aux;
    char *q_inner;
    char *q_dir;
    char *q_cmd;
    char *wrapped;
    int rc;

    if (strstr(cmd, "KVMSTACK-OS-RELEASE")) {
        h->n_facts++;
        sbuf_addstr(out, h->facts);
        *status = 0;
        return 0;
    }
    q_inner = shell_quote(inner);
    q_dir = shell_quote(h->dir);
    q_cmd = shell_quote(cmd);
    wrapped = xasprintf("exec unshare %s-m -- /bin/sh -c %s %s %s",
                        getuid() ? "-r " : "", q_inner, q_dir, q_cmd);
    rc = local_exec(&h->local, wrapped, in, in_len, out, err, status);
    free(wrapped);
    free(q_cmd);
    free(q_dir);
    free(q_inner);
    return rc;
}

/* Writes executable script 'name' of the fixture's bin/. */
static void
fake_script(const struct fixture *f, const char *name, const char *text)
{
    char *path = fixture_write(f, name, text);

    if (chmod(path, 0755)) {
        abort();
    }
    free(path);
}

/* Makes 'f' a fake rpm host with 'facts': the scripts in bin/, the state
 * in fake/ (installed/, units/, calls.log), the transport in 'h'. */
static void
fake_rpm_host_init(struct fixture *f, struct fake_rpm_host *h,
                   const char *facts)
{
    static const char *const dirs[] = {
        "bin", "fake", "fake/installed", "fake/units",
    };

    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        char *path = xasprintf("%s/%s", f->dir, dirs[i]);

        if (mkdir(path, 0755)) {
            abort();
        }
        free(path);
    }
    fake_script(f, "bin/rpm", fake_rpm_script);
    fake_script(f, "bin/dnf", fake_pm_script);
    fake_script(f, "bin/yum", fake_pm_script);
    fake_script(f, "bin/systemctl", fake_systemctl_script);
    memset(h, 0, sizeof *h);
    h->facts = facts;
    h->dir = f->dir;
    f->target.exec = fake_rpm_host_exec;
    f->target.exec_aux = h;
}

/* The fakes' calls since the last take, one "tool argv" a line; empties
 * the log.  Caller frees. */
static char *
fake_log_take(const struct fixture *f)
{
    char *text = fixture_read(f, "fake/calls.log");
    char *path = xasprintf("%s/fake/calls.log", f->dir);

    unlink(path);
    free(path);
    return text ? text : xstrdup("");
}

/* Checks that the fakes were called exactly as 'EXPECT' says since the
 * last check. */
#define CHECK_FAKE_LOG(F, EXPECT)                                      \
    do {                                                               \
        char *log_ = fake_log_take(F);                                 \
        bool same_ = !strcmp(log_, EXPECT);                            \
                                                                       \
        CHECK_MSG(same_, "fake calls:\n%s-- expected:\n%s", log_,       \
                  EXPECT);                                             \
        free(log_);                                                    \
    } while (0)

#define CHECK_RECAP(F, OK, CHANGED, FAILED)                            \
    do {                                                               \
        CHECK_INT((F)->recap.ok, OK);                                  \
        CHECK_INT((F)->recap.changed, CHANGED);                        \
        CHECK_INT((F)->recap.failed, FAILED);                          \
    } while (0)

/* The facts the runner derives from a canned host, as one line. */
static const char fake_facts_yaml[] =
    "- hosts: all\n"
    "  tasks:\n"
    "    - name: show facts\n"
    "      command: >-\n"
    "        echo {{ os_family }} {{ distribution }}\n"
    "        {{ distribution_version }} {{ distribution_major_version }}\n"
    "        {{ pkg_mgr }} {{ architecture }} {{ has_systemd }}\n"
    "        {{ ansible_facts['os_family'] }} {{ ansible_pkg_mgr }}\n"
    "      register: facts\n"
    "      changed_when: false\n"
    "      when: ansible_facts['os_family'] == 'RedHat' and has_systemd\n";

/* A package task whose names, state and update_cache come from the extra
 * vars 'pkgs', 'want' and 'uc'. */
static const char fake_pkg_yaml[] =
    "- hosts: all\n"
    "  tasks:\n"
    "    - name: hypervisor packages\n"
    "      package:\n"
    "        name: \"{{ pkgs }}\"\n"
    "        state: \"{{ want }}\"\n"
    "        update_cache: \"{{ uc }}\"\n";

/* Sets the extra vars of fake_pkg_yaml: 'names' comma-separated. */
static void
fake_pkg_vars(struct fixture *f, const char *names, const char *want,
              const char *uc)
{
    json_object_set_new(f->vars, "pkgs", json_string(names));
    json_object_set_new(f->vars, "want", json_string(want));
    json_object_set_new(f->vars, "uc", json_string(uc));
}

/* FAKE Fedora 40 (see above): the facts, then package present and absent
 * through dnf, idempotent, update_cache.  Real apt counterpart:
 * test_package_check. */
FIXTURE_CASE(test_fake_fedora_dnf)
{
    struct fake_rpm_host h;

    fake_rpm_host_init(f, &h, fake_fedora_facts);
    free(fixture_write(f, "facts.yaml", fake_facts_yaml));
    free(fixture_write(f, "pkg.yaml", fake_pkg_yaml));
    free(fixture_write(f, "fake/installed/nftables", ""));

    CHECK_RUN_OK(f, "facts.yaml");
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "facts"),
              "RedHat Fedora 40 40 dnf x86_64 True RedHat dnf\n");
    CHECK_INT(h.n_facts, 1);

    /* Only the missing names, in one install. */
    fake_pkg_vars(f, "qemu-kvm, nftables, libvirt-client", "present", "no");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-kvm\n"
                   "rpm -q --quiet --whatprovides nftables\n"
                   "rpm -q --quiet --whatprovides libvirt-client\n"
                   "dnf install -y -q qemu-kvm libvirt-client\n");
    CHECK(fixture_exists(f, "fake/installed/qemu-kvm"));
    CHECK(fixture_exists(f, "fake/installed/libvirt-client"));
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-kvm\n"
                   "rpm -q --quiet --whatprovides nftables\n"
                   "rpm -q --quiet --whatprovides libvirt-client\n");

    /* update_cache: the cache is refreshed before an install, and only
     * when something is missing. */
    fake_pkg_vars(f, "qemu-kvm, dnsmasq", "installed", "yes");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-kvm\n"
                   "rpm -q --quiet --whatprovides dnsmasq\n"
                   "dnf makecache -q\n"
                   "dnf install -y -q dnsmasq\n");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-kvm\n"
                   "rpm -q --quiet --whatprovides dnsmasq\n");

    /* absent removes what is installed, in one call. */
    fake_pkg_vars(f, "dnsmasq, kvmstack-never, nftables", "absent", "no");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides dnsmasq\n"
                   "rpm -q --quiet --whatprovides kvmstack-never\n"
                   "rpm -q --quiet --whatprovides nftables\n"
                   "dnf remove -y -q dnsmasq nftables\n");
    CHECK(!fixture_exists(f, "fake/installed/dnsmasq"));
    CHECK(!fixture_exists(f, "fake/installed/nftables"));
    CHECK(fixture_exists(f, "fake/installed/qemu-kvm"));
    fake_pkg_vars(f, "dnsmasq, kvmstack-never, nftables", "removed", "no");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides dnsmasq\n"
                   "rpm -q --quiet --whatprovides kvmstack-never\n"
                   "rpm -q --quiet --whatprovides nftables\n");
    CHECK(access("/run/systemd/system", F_OK) != 0);
}

/* FAKE CentOS 7 (see above), a yum-only host: the commands go to yum.
 * Real apt counterpart: test_package_check. */
FIXTURE_CASE(test_fake_centos_yum)
{
    struct fake_rpm_host h;

    fake_rpm_host_init(f, &h, fake_centos7_facts);
    free(fixture_write(f, "facts.yaml", fake_facts_yaml));
    free(fixture_write(f, "pkg.yaml", fake_pkg_yaml));

    CHECK_RUN_OK(f, "facts.yaml");
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "facts"),
              "RedHat CentOS 7 7 yum x86_64 True RedHat yum\n");
    fake_pkg_vars(f, "qemu-kvm, qemu-img", "present", "yes");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-kvm\n"
                   "rpm -q --quiet --whatprovides qemu-img\n"
                   "yum makecache -q\n"
                   "yum install -y -q qemu-kvm qemu-img\n");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    free(fake_log_take(f));
    fake_pkg_vars(f, "qemu-img", "absent", "no");
    CHECK_RUN_OK(f, "pkg.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides qemu-img\n"
                   "yum remove -y -q qemu-img\n");
}

/* FAKE Fedora 40 (see above): an install dnf cannot do fails the task
 * and the run, with dnf's words; the next task does not run.  Real
 * counterpart of a failing task: test_failed_task. */
FIXTURE_CASE(test_fake_fedora_dnf_fail)
{
    struct fake_rpm_host h;

    fake_rpm_host_init(f, &h, fake_fedora_facts);
    free(fixture_write(f, "fail.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: install tools\n"
                       "      package:\n"
                       "        name: [tmux, no-such-package]\n"
                       "    - name: never\n"
                       "      package:\n"
                       "        name: never-installed\n"));
    CHECK_INT(fixture_run(f, "fail.yaml"), -1);
    CHECK_RECAP(f, 1, 0, 1);
    CHECK_INT(error_last_problem(), PROBLEM_INTERNAL_ERROR);
    CHECK_CONTAINS(error_last_message(), "task 'install tools' failed");
    CHECK_CONTAINS(error_last_message(),
                   "Error: Unable to find a match: no-such-package");
    CHECK_STR(f->recap.failed_task, "install tools");
    CHECK_CONTAINS(f->recap.failed_detail, "task: install tools\n");
    CHECK_CONTAINS(f->recap.failed_detail, "exit code: 1\n");
    CHECK_CONTAINS(f->recap.failed_detail,
                   "No match for argument: no-such-package\n"
                   "Error: Unable to find a match: no-such-package\n");
    CHECK_FAKE_LOG(f, "rpm -q --quiet --whatprovides tmux\n"
                   "rpm -q --quiet --whatprovides no-such-package\n"
                   "dnf install -y -q tmux no-such-package\n");
    CHECK(!fixture_exists(f, "fake/installed/tmux"));
}

/* FAKE Fedora 40 (see above): names with shell metacharacters are refused
 * before anything runs on the host (only the canned facts were asked).
 * Real apt counterpart: test_package_check's "bad name". */
FIXTURE_CASE(test_fake_fedora_dnf_bad_name)
{
    static const char *const bad[] = {
        "qemu-kvm;reboot", "$(touch pwned)", "a b", "`id`", "-y",
        "x|y", "x>y", "*",
    };
    struct fake_rpm_host h;

    fake_rpm_host_init(f, &h, fake_fedora_facts);
    free(fixture_write(f, "bad.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: bad name\n"
                       "      package:\n"
                       "        name: [tmux, \"{{ bad }}\"]\n"));
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *needle = xasprintf("'%s' is not a package name", bad[i]);

        json_object_set_new(f->vars, "bad", json_string(bad[i]));
        CHECK_INT(fixture_run(f, "bad.yaml"), -1);
        CHECK_RECAP(f, 1, 0, 1);
        CHECK_CONTAINS(error_last_message(), "task 'bad name' failed");
        CHECK_CONTAINS(error_last_message(), needle);
        free(needle);
        CHECK_INT(h.local.n_exec, 0);
        CHECK_FAKE_LOG(f, "");
    }
    CHECK_INT(h.n_facts, (int) ARRAY_SIZE(bad));
    CHECK(!fixture_exists(f, "pwned"));
}

/* FAKE Fedora 40 (see above): the service module's systemd branch.  Real
 * counterpart, the plain-init branch: test_service_plain. */
FIXTURE_CASE(test_fake_fedora_systemd)
{
    struct fake_rpm_host h;

    fake_rpm_host_init(f, &h, fake_fedora_facts);
    free(fixture_write(f, "svc.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: libvirtd\n"
                       "      service:\n"
                       "        name: libvirtd.service\n"
                       "        state: \"{{ want }}\"\n"
                       "        enabled: \"{{ en }}\"\n"));
    free(fixture_write(f, "svc-noen.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: libvirtd\n"
                       "      service:\n"
                       "        name: libvirtd.service\n"
                       "        state: \"{{ want }}\"\n"));

    /* started + enabled: both done, then only asked. */
    json_object_set_new(f->vars, "want", json_string("started"));
    json_object_set_new(f->vars, "en", json_string("yes"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "systemctl is-enabled --quiet -- libvirtd.service\n"
                   "systemctl enable -- libvirtd.service\n"
                   "systemctl is-active --quiet -- libvirtd.service\n"
                   "systemctl start -- libvirtd.service\n");
    CHECK(fixture_exists(f, "fake/units/libvirtd.service.enabled"));
    CHECK(fixture_exists(f, "fake/units/libvirtd.service.active"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "systemctl is-enabled --quiet -- libvirtd.service\n"
                   "systemctl is-active --quiet -- libvirtd.service\n");

    /* restarted: every run. */
    json_object_set_new(f->vars, "want", json_string("restarted"));
    for (int i = 0; i < 2; i++) {
        CHECK_RUN_OK(f, "svc.yaml");
        CHECK_RECAP(f, 2, 1, 0);
        CHECK_FAKE_LOG(f,
                       "systemctl is-enabled --quiet -- libvirtd.service\n"
                       "systemctl restart -- libvirtd.service\n");
    }

    /* stopped + disabled, then nothing to do. */
    json_object_set_new(f->vars, "want", json_string("stopped"));
    json_object_set_new(f->vars, "en", json_string("no"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "systemctl is-enabled --quiet -- libvirtd.service\n"
                   "systemctl disable -- libvirtd.service\n"
                   "systemctl is-active --quiet -- libvirtd.service\n"
                   "systemctl stop -- libvirtd.service\n");
    CHECK(!fixture_exists(f, "fake/units/libvirtd.service.enabled"));
    CHECK(!fixture_exists(f, "fake/units/libvirtd.service.active"));
    CHECK_RUN_OK(f, "svc.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "systemctl is-enabled --quiet -- libvirtd.service\n"
                   "systemctl is-active --quiet -- libvirtd.service\n");

    /* Without 'enabled' the unit file state is not asked. */
    CHECK_RUN_OK(f, "svc-noen.yaml");
    CHECK_RECAP(f, 2, 0, 0);
    CHECK_FAKE_LOG(f, "systemctl is-active --quiet -- libvirtd.service\n");

    /* reloaded: a stopped unit is started (as Ansible's systemd module
     * does; systemd refuses to reload an inactive unit), a running one
     * reloaded, every run. */
    json_object_set_new(f->vars, "want", json_string("reloaded"));
    CHECK_RUN_OK(f, "svc-noen.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "systemctl is-active --quiet -- libvirtd.service\n"
                   "systemctl start -- libvirtd.service\n");
    CHECK(fixture_exists(f, "fake/units/libvirtd.service.active"));
    CHECK_RUN_OK(f, "svc-noen.yaml");
    CHECK_RECAP(f, 2, 1, 0);
    CHECK_FAKE_LOG(f, "systemctl is-active --quiet -- libvirtd.service\n"
                   "systemctl reload -- libvirtd.service\n");

    /* A failing systemctl fails the task with its words. */
    free(fixture_write(f, "bin/systemctl",
                       "#!/bin/sh\n"
                       "echo \"systemctl $*\" >> \"${0%/*}/../fake/"
                       "calls.log\"\n"
                       "case $1 in is-active) exit 3;; esac\n"
                       "echo 'Job for libvirtd.service failed because the "
                       "control process exited with error code.' >&2\n"
                       "exit 1\n"));
    json_object_set_new(f->vars, "want", json_string("started"));
    CHECK_INT(fixture_run(f, "svc-noen.yaml"), -1);
    CHECK_RECAP(f, 1, 0, 1);
    CHECK_CONTAINS(error_last_message(), "task 'libvirtd' failed");
    CHECK_CONTAINS(error_last_message(), "control process exited");
    CHECK_FAKE_LOG(f, "systemctl is-active --quiet -- libvirtd.service\n"
                   "systemctl start -- libvirtd.service\n");
    CHECK(access("/run/systemd/system", F_OK) != 0);
}

/* ---- Parse errors: refused with the task and the key ---- */

struct parse_case {
    const char *name;           /* Case name. */
    const char *tasks;          /* YAML under "tasks:". */
    const char *needle1;        /* In the message... */
    const char *needle2;        /* ...and this too. */
};

static const struct parse_case parse_cases[] = {
    { "unknown-module",
      "    - name: bad one\n      fancy_module: {x: 1}\n",
      "task 'bad one'", "fancy_module" },
    { "two-modules",
      "    - name: double\n      file: {path: /tmp/x, state: touch}\n"
      "      command: /bin/true\n",
      "task 'double'", "two modules" },
    { "bad-when",
      "    - name: bad when\n      command: /bin/true\n      when: x ==\n",
      "task 'bad when'", "when" },
    { "when-braces",
      "    - name: braces\n      command: /bin/true\n"
      "      when: \"{{ x }}\"\n",
      "task 'braces'", "without '{{ }}'" },
    { "unknown-argument",
      "    - name: colours\n      file: {path: /x, colour: red}\n",
      "task 'colours'", "colour" },
    { "unknown-key",
      "    - name: typo\n      command: /bin/true\n      registr: x\n",
      "task 'typo'", "registr" },
    { "unknown-handler",
      "    - name: notifier\n      command: /bin/true\n"
      "      notify: nothere\n",
      "task 'notifier'", "nothere" },
    { "bad-state",
      "    - name: weird state\n      file: {path: /x, state: weird}\n",
      "task 'weird state'", "weird" },
    { "unterminated-template",
      "    - name: open\n      command: echo {{ x\n",
      "task 'open'", "unterminated" },
    { "relative-path",
      "    - name: rel\n      file: {path: relative/x, state: touch}\n",
      "task 'rel'", "absolute" },
    { "copy-content-and-src",
      "    - name: both\n      copy: {src: a, content: b, dest: /x}\n",
      "task 'both'", "exactly one" },
    { "jinja-statement",
      "    - name: stmt\n"
      "      copy: {content: \"{% if x %}y{% endif %}\", dest: /x}\n",
      "task 'stmt'", "not supported" },
    { "inline-creates",
      "    - name: inline\n      command: touch /x creates=/x\n",
      "task 'inline'", "args:" },
    { "no-module",
      "    - name: empty\n      when: true\n",
      "task 'empty'", "no module" },
    { "missing-argument",
      "    - name: no dest\n      copy: {content: x}\n",
      "task 'no dest'", "dest" },
    { "bad-mode",
      "    - name: mode\n      file: {path: /x, state: touch, mode: u+x}\n",
      "task 'mode'", "octal" },
    { "unknown-filter",
      "    - name: filter\n      command: echo {{ x | shout }}\n",
      "task 'filter'", "shout" },
    { "unnamed-task",
      "    - command: /bin/true\n      bogus: 1\n",
      "task #1", "bogus" },
};

static void
test_parse_error(const void *aux)
{
    const struct parse_case *pc = aux;
    struct fixture f;
    char *yaml = NULL;
    char *path = NULL;

    fixture_init(&f);
    yaml = xasprintf("- name: play\n  hosts: all\n  tasks:\n%s",
                     pc->tasks);
    path = fixture_write(&f, "bad.yaml", yaml);
    error_reset();
    if (playbook_check(path) != -1) {
        unit_fail(__FILE__, __LINE__, "%s: accepted", pc->name);
    } else if (!strstr(error_last_message(), pc->needle1)
               || !strstr(error_last_message(), pc->needle2)) {
        unit_fail(__FILE__, __LINE__, "%s: message '%s' lacks '%s' or '%s'",
                  pc->name, error_last_message(),
                  pc->needle1, pc->needle2);
    } else if (playbook_run(path, &f.target, f.vars, &f.recap) != -1
               || f.local.n_exec != 0) {
        unit_fail(__FILE__, __LINE__, "%s: ran", pc->name);
    }
    free(path);
    free(yaml);
    fixture_destroy(&f);
}

FIXTURE_CASE(test_parse_play_key)
{
    char *path = fixture_write(f, "play.yaml",
                               "- name: p\n  hosts: all\n  roles: [x]\n");

    CHECK_INT(playbook_check(path), -1);
    CHECK_CONTAINS(error_last_message(), "play 'p'");
    CHECK_CONTAINS(error_last_message(), "roles");
    free(path);
    path = fixture_write(f, "yaml.yaml", "- name: [unclosed\n");
    CHECK_INT(playbook_check(path), -1);
    CHECK_CONTAINS(error_last_message(), "line");
    free(path);
}

/* ---- The real playbooks ---- */

/* A fake host that needs nothing: Debian facts, every module answers "ok",
 * `shell` tasks print "1000 400". */
struct fake {
    int n_exec;
    struct sbuf cmds;           /* Every command, separated by "\n----\n". */
};

static int
fake_exec(void *aux, const char *cmd, const void *in, size_t in_len,
          struct sbuf *out, struct sbuf *err, int *status)
{
    struct fake *fk = aux;

    (void) in;
    (void) in_len;
    (void) err;
    fk->n_exec++;
    sbuf_addf(&fk->cmds, "%s\n----\n", cmd);
    *status = 0;
    if (strstr(cmd, "KVMSTACK-OS-RELEASE")) {
        sbuf_addstr(out, "arch=x86_64\nmgr=apt-get\nKVMSTACK-OS-RELEASE\n"
                    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                    "ID=debian\nVERSION_ID=\"12\"\n");
    } else if (strstr(cmd, "echo KVMSTACK-RUN")) {
        sbuf_addstr(out, "KVMSTACK-RUN\n1000 400\n");
    } else {
        sbuf_addstr(out, "KVMSTACK-OK\n");
    }
    return 0;
}

static void
test_kvm_host_check(const void *aux)
{
    (void) aux;
    CHECK_MSG(playbook_check("playbooks/kvm-host.yaml") == 0, "%s",
              error_last_message());
    CHECK_MSG(playbook_check("playbooks/sftp-backup-storage.yaml") == 0,
              "%s", error_last_message());
}

FIXTURE_CASE(test_kvm_host_dry)
{
    struct fake fk = { 0 };
    struct playbook_target t = { .exec = fake_exec, .exec_aux = &fk };
    char *agent = fixture_write(f, "agent", "\177ELF pretend agent\n");
    json_t *vars = json_pack("{s:s, s:s}", "agent_src", agent,
                             "agent_dest", "/usr/local/bin/kvmstack-agent");
    int rc;

    sbuf_init(&fk.cmds);
    rc = playbook_run("playbooks/kvm-host.yaml", &t, vars, &f->recap);
    json_decref(vars);
    free(agent);
    CHECK_MSG(rc == 0, "%s", error_last_message());
    /* Facts + 12 tasks; the dnf task and the systemd ones are skipped. */
    CHECK_INT(f->recap.skipped, 3);
    CHECK_INT(f->recap.changed, 0);
    CHECK_INT(f->recap.ok, 10);
    CHECK_INT(fk.n_exec, 10);           /* One command per task. */
    CHECK_CONTAINS(fk.cmds.s, "'qemu-system-x86'");
    CHECK_CONTAINS(fk.cmds.s, "'/usr/sbin/libvirtd' '-d'");
    CHECK_CONTAINS(fk.cmds.s, "pth='/proc/sys/net/ipv4/ip_forward'");
    CHECK_CONTAINS(fk.cmds.s, "f='/etc/sysctl.d/60-kvmstack.conf'");
    sbuf_destroy(&fk.cmds);
}

FIXTURE_CASE(test_sftp_dry)
{
    struct fake fk = { 0 };
    struct playbook_target t = { .exec = fake_exec, .exec_aux = &fk };
    json_t *vars = json_pack("{s:s}", "url", "/srv/it's backup");
    int rc;

    (void) f;
    sbuf_init(&fk.cmds);
    rc = playbook_run("playbooks/sftp-backup-storage.yaml", &t, vars,
                      &f->recap);
    json_decref(vars);
    CHECK_MSG(rc == 0, "%s", error_last_message());
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "storage_df"),
              "1000 400\n");
    CHECK_CONTAINS(fk.cmds.s, "p='/srv/it'\\''s backup'");
    CHECK_INT(f->recap.changed, 0);
    sbuf_destroy(&fk.cmds);
}

/* ---- The persistent shell transport, over pipes to a local sh ---- */

struct pipe_shell {
    pid_t pid;
    int to_sh;                  /* The shell's stdin. */
    int from_sh;                /* Its stdout. */
};

static int
pipe_write(void *aux, const void *data, size_t n)
{
    struct pipe_shell *ps = aux;
    struct sigaction ign = { .sa_handler = SIG_IGN };
    struct sigaction old;
    const char *p = data;
    int rc = 0;

    sigaction(SIGPIPE, &ign, &old);
    while (n > 0) {
        ssize_t w = write(ps->to_sh, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            error_report(PROBLEM_HOST_UNREACHABLE, "write: %s",
                         strerror(errno));
            rc = -1;
            break;
        }
        p += w;
        n -= (size_t) w;
    }
    sigaction(SIGPIPE, &old, NULL);
    return rc;
}

static int
pipe_read(void *aux, struct sbuf *buf, int timeout_ms)
{
    struct pipe_shell *ps = aux;
    struct pollfd pfd = { .fd = ps->from_sh, .events = POLLIN };
    char tmp[65536];
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) <= 0) {
        return 0;
    }
    n = read(ps->from_sh, tmp, sizeof tmp);
    if (n <= 0) {
        error_report(PROBLEM_HOST_UNREACHABLE, "the shell closed");
        return -1;
    }
    sbuf_add(buf, tmp, (size_t) n);
    return (int) n;
}

static void
pipe_shell_start(struct pipe_shell *ps)
{
    int in[2];
    int out[2];

    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
        abort();
    }
    ps->pid = fork();
    if (ps->pid < 0) {
        abort();
    }
    if (ps->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl("/bin/sh", "sh", (char *) NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ps->to_sh = in[1];
    ps->from_sh = out[0];
}

static void
pipe_shell_stop(struct pipe_shell *ps)
{
    close(ps->to_sh);
    while (waitpid(ps->pid, NULL, 0) < 0 && errno == EINTR) {
        continue;
    }
    close(ps->from_sh);
}

/* The checks of test_shell_transport, with f->target on the shell. */
static void
shell_transport_checks(struct fixture *f, struct sbuf *bin)
{
    char *text;
    int64_t start;
    double per_task;
    bool same;
    FILE *file;

    /* Binary content, small (with the check) and big (after it). */
    for (int i = 0; i < 100000; i++) {
        unsigned char c = (unsigned char) (i * 7 + i / 256);

        sbuf_add(bin, &c, 1);
    }
    text = xasprintf("%s/big.bin", f->dir);
    file = fopen(text, "wb");
    CHECK(file && fwrite(bin->s, 1, bin->len, file) == bin->len);
    fclose(file);
    free(text);
    text = xasprintf("%s/small.bin", f->dir);
    file = fopen(text, "wb");
    CHECK(file && fwrite(bin->s, 1, 1000, file) == 1000);
    fclose(file);
    free(text);
    free(fixture_write(f, "src.txt", "from src\n"));
    free(fixture_write(f, "tmpl.j2", "name={{ greeting }}\n"));
    free(fixture_write(f, "modules.yaml", modules_yaml));
    free(fixture_write(f, "bin.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - copy: {src: big.bin, dest: \"{{ dir }}/big\"}\n"
                       "    - copy: {src: small.bin,\n"
                       "             dest: \"{{ dir }}/small\"}\n"
                       "    - shell: exit 5\n"
                       "      ignore_errors: yes\n"
                       "    - shell: echo out; echo err >&2\n"
                       "      register: both\n"));

    CHECK_RUN_OK(f, "modules.yaml");
    CHECK_INT(f->recap.changed, 9);
    text = fixture_read(f, "d/tmpl.txt");
    CHECK_STR(text, "name=hello\n");
    free(text);
    start = time_msec();
    CHECK_RUN_OK(f, "modules.yaml");
    per_task = (double) (time_msec() - start) / 12;
    CHECK_INT(f->recap.changed, 0);
    fprintf(stderr, "# playbook: no-change run through the persistent "
            "shell: %.1f ms per task\n", per_task);

    CHECK_RUN_OK(f, "bin.yaml");
    CHECK_INT(f->recap.changed, 3);
    CHECK_INT(f->recap.ignored, 1);
    CHECK_STR(playbook_recap_get_stdout(&f->recap, "both"), "out\n");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(f->recap.registered, "both"), "stderr")),
              "err\n");
    text = xasprintf("cmp -s %s/big.bin %s/big && cmp -s %s/small.bin "
                     "%s/small", f->dir, f->dir, f->dir, f->dir);
    same = system(text) == 0;
    free(text);
    CHECK(same);
    CHECK_RUN_OK(f, "bin.yaml");
    CHECK_INT(f->recap.changed, 1);     /* Only "echo out". */

    /* A failure keeps the shell usable and reports like the exec one. */
    free(fixture_write(f, "fail.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - name: boom\n"
                       "      shell: echo oops >&2; exit 3\n"));
    CHECK_INT(fixture_run(f, "fail.yaml"), -1);
    CHECK_CONTAINS(f->recap.failed_detail, "exit code: 3");
    CHECK_CONTAINS(f->recap.failed_detail, "oops");
    CHECK_RUN_OK(f, "modules.yaml");
}

FIXTURE_CASE(test_shell_transport)
{
    struct pipe_shell ps;
    struct playbook_shell *sh;
    struct sbuf bin;

    pipe_shell_start(&ps);
    sh = playbook_shell_new(pipe_write, pipe_read, &ps, 60000);
    f->target.exec = playbook_shell_exec;
    f->target.exec_aux = sh;
    sbuf_init(&bin);
    shell_transport_checks(f, &bin);
    playbook_shell_free(sh);
    pipe_shell_stop(&ps);
    sbuf_destroy(&bin);
}

/* ---- Speed: a 10-task playbook that changes nothing ---- */

FIXTURE_CASE(test_timing)
{
    int64_t start;
    double per_task;

    free(fixture_write(f, "src.txt", "x\n"));
    free(fixture_write(f, "ten.yaml",
                       "- hosts: all\n"
                       "  tasks:\n"
                       "    - file: {path: \"{{ dir }}/a\", state: directory,"
                       " mode: \"0755\"}\n"
                       "    - file: {path: \"{{ dir }}/b\", state: directory}"
                       "\n"
                       "    - copy: {content: \"x\\n\", dest: \"{{ dir }}/a/x"
                       "\", mode: \"0644\"}\n"
                       "    - copy: {src: src.txt, dest: \"{{ dir }}/a/y\"}\n"
                       "    - lineinfile: {path: \"{{ dir }}/a/c\", line: k=v,"
                       " create: yes}\n"
                       "    - lineinfile: {path: \"{{ dir }}/a/c\", regexp: "
                       "'^z=', line: z=1}\n"
                       "    - command: touch {{ dir }}/a/t\n"
                       "      args: {creates: \"{{ dir }}/a/t\"}\n"
                       "    - file: {path: \"{{ dir }}/a/u\", state: touch}\n"
                       "    - file: {path: \"{{ dir }}/none\", state: absent}"
                       "\n"
                       "    - sysctl: {name: kernel.ostype, value: Linux, "
                       "sysctl_file: ''}\n"));
    CHECK_RUN_OK(f, "ten.yaml");
    start = time_msec();
    CHECK_RUN_OK(f, "ten.yaml");
    per_task = (double) (time_msec() - start) / 11;
    CHECK_INT(f->recap.changed, 0);
    CHECK_INT(f->recap.ok, 11);
    fprintf(stderr, "# playbook: no-change run of 10 tasks + facts, local "
            "transport: %.1f ms per task\n", per_task);
    CHECK_MSG(per_task < 100, "%.1f ms per task", per_task);
}

void
test_playbook_register(void)
{
    unit_add(test_shell_quote, NULL, "playbook/shell-quote");
    unit_add(test_modules_idempotent, NULL, "playbook/modules-idempotent");
    unit_add(test_copy_large, NULL, "playbook/copy-large");
    unit_add(test_failed_task, NULL, "playbook/failed-task");
    unit_add(test_undefined_var, NULL, "playbook/undefined-var");
    unit_add(test_when, NULL, "playbook/when");
    unit_add(test_register, NULL, "playbook/register");
    unit_add(test_failed_when, NULL, "playbook/failed-when");
    unit_add(test_handlers, NULL, "playbook/handlers");
    unit_add(test_injection, NULL, "playbook/injection");
    unit_add(test_service_plain, NULL, "playbook/service-plain");
    unit_add(test_sysctl, NULL, "playbook/sysctl");
    unit_add(test_package_check, NULL, "playbook/package-check");
    unit_add(test_fake_fedora_dnf, NULL, "playbook/fake-fedora-dnf");
    unit_add(test_fake_centos_yum, NULL, "playbook/fake-centos-yum");
    unit_add(test_fake_fedora_dnf_fail, NULL,
             "playbook/fake-fedora-dnf-fail");
    unit_add(test_fake_fedora_dnf_bad_name, NULL,
             "playbook/fake-fedora-dnf-bad-name");
    unit_add(test_fake_fedora_systemd, NULL, "playbook/fake-fedora-systemd");
    for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
        unit_add(test_parse_error, &parse_cases[i], "playbook/parse-%s",
                 parse_cases[i].name);
    }
    unit_add(test_parse_play_key, NULL, "playbook/parse-play-key");
    unit_add(test_kvm_host_check, NULL, "playbook/kvm-host-check");
    unit_add(test_kvm_host_dry, NULL, "playbook/kvm-host-dry");
    unit_add(test_sftp_dry, NULL, "playbook/sftp-dry");
    unit_add(test_shell_transport, NULL, "playbook/shell-transport");
    unit_add(test_timing, NULL, "playbook/timing");
}
