/* main.c: build/unit-tests, the one runner of every unit test, in the
 * manner of Open vSwitch's ovstest: a table names each suite's
 * registration function, the suites add their cases by name, and the runner
 * runs all of them, or those whose name matches a glob, printing TAP:
 *
 *     1..N
 *     ok 1 - validate/name-empty
 *     not ok 2 - res/alloc-ip-sequential # test-res.c:120: rc == 0
 *
 * It exits 0 when every selected case passed and 1 otherwise (also when
 * the glob selects nothing).  Cases need no root, network or daemon; those
 * that need a database make their own in a temporary directory.
 *
 * usage: unit-tests [--list] [GLOB] */
#include "unit.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

/* One registered case. */
struct unit_case {
    char *name;                 /* e.g. "validate/name-empty". */
    unit_fn *fn;
    const void *aux;            /* Passed to 'fn'; owned by the suite. */
};

/* test-playbook.c's registration (the others are in unit.h). */
void test_playbook_register(void);

/* The suites: a name for --list's benefit and the registration function
 * that adds its cases. */
static const struct {
    const char *name;
    void (*add)(void);
} suites[] = {
    { "validate", test_validate_register },
    { "res", test_res_register },
    { "playbook", test_playbook_register },
};

static struct unit_case *cases;
static size_t n_cases;
static size_t cap_cases;

/* The first failure of the running case, NULL while it passes. */
static char *failure;

void
unit_add(unit_fn *fn, const void *aux, const char *fmt, ...)
{
    va_list ap;

    if (n_cases == cap_cases) {
        cap_cases = cap_cases ? cap_cases * 2 : 64;
        cases = xrealloc(cases, cap_cases * sizeof *cases);
    }
    va_start(ap, fmt);
    cases[n_cases].name = xvasprintf(fmt, ap);
    va_end(ap);
    cases[n_cases].fn = fn;
    cases[n_cases].aux = aux;
    n_cases++;
}

void
unit_fail(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    va_list ap;
    char *reason;

    if (failure) {
        return;
    }
    va_start(ap, fmt);
    reason = xvasprintf(fmt, ap);
    va_end(ap);
    failure = xasprintf("%s:%d: %s", base ? base + 1 : file, line, reason);
    free(reason);
    /* Keeps the TAP line one line. */
    for (char *p = failure; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
}

bool
unit_failed(void)
{
    return failure != NULL;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: unit-tests [--list] [GLOB]\n"
            "Runs the unit tests whose names match GLOB (default: all)\n"
            "and prints TAP; --list prints the names only.\n");
}

int
main(int argc, char **argv)
{
    const char *glob = "*";
    bool have_glob = false;
    bool list = false;
    size_t n_selected = 0;
    size_t n_failed = 0;
    size_t n;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            list = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || have_glob) {
            usage(stderr);
            return 2;
        } else {
            glob = argv[i];
            have_glob = true;
        }
    }
    /* The code under test logs state changes at INFO; TAP stays clean. */
    log_set_level(getenv("UNIT_LOG") ? LOG_LEVEL_DBG : LOG_LEVEL_WARN);

    for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
        suites[i].add();
    }
    for (size_t i = 0; i < n_cases; i++) {
        if (!fnmatch(glob, cases[i].name, 0)) {
            if (list) {
                printf("%s\n", cases[i].name);
            }
            n_selected++;
        }
    }
    if (list) {
        return 0;
    }
    if (!n_selected) {
        printf("1..0\n");
        fprintf(stderr, "unit-tests: no case matches '%s'\n", glob);
        return 1;
    }
    printf("1..%zu\n", n_selected);
    fflush(stdout);
    n = 0;
    for (size_t i = 0; i < n_cases; i++) {
        if (fnmatch(glob, cases[i].name, 0)) {
            continue;
        }
        n++;
        error_reset();
        cases[i].fn(cases[i].aux);
        if (failure) {
            printf("not ok %zu - %s # %s\n", n, cases[i].name, failure);
            free(failure);
            failure = NULL;
            n_failed++;
        } else {
            printf("ok %zu - %s\n", n, cases[i].name);
        }
        fflush(stdout);
    }
    error_reset();
    for (size_t i = 0; i < n_cases; i++) {
        free(cases[i].name);
    }
    free(cases);
    /* The last line, for CI logs read without a TAP harness. */
    printf("# %zu passed, %zu failed\n", n_selected - n_failed, n_failed);
    return n_failed ? 1 : 0;
}
