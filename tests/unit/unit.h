/* unit.h: the unit-test runner's interface for the test-<module>.c files.
 *
 * A test file exports one registration function, listed in main.c's suite
 * table, that adds its cases with unit_add(): one case per name, usually
 * one per row of a table, so that "validate/name-empty" can be selected
 * alone.  A case is a function of its row; the CHECK macros record the
 * first failed check of the case and return from the case function. */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H 1

#include <stdbool.h>

/* A case body; 'aux' is the pointer given to unit_add(). */
typedef void unit_fn(const void *aux);

/* Adds case 'fn'('aux') named by the printf-style 'fmt'. */
void unit_add(unit_fn *fn, const void *aux, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records that the running case failed at 'file':'line' for the reason
 * 'fmt'; only the first reason of a case is kept. */
void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True once the running case has failed. */
bool unit_failed(void);

/* Registration functions of the test files (see main.c). */
void test_validate_register(void);
void test_res_register(void);

#define CHECK(COND)                                                   \
    do {                                                              \
        if (!(COND)) {                                                \
            unit_fail(__FILE__, __LINE__, "%s", #COND);               \
            return;                                                   \
        }                                                             \
    } while (0)

#define CHECK_MSG(COND, ...)                                          \
    do {                                                              \
        if (!(COND)) {                                                \
            unit_fail(__FILE__, __LINE__, __VA_ARGS__);               \
            return;                                                   \
        }                                                             \
    } while (0)

#define CHECK_INT(A, B)                                               \
    do {                                                              \
        long long a_ = (long long) (A);                               \
        long long b_ = (long long) (B);                               \
                                                                      \
        if (a_ != b_) {                                               \
            unit_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld",   \
                      #A, #B, a_, b_);                                \
            return;                                                   \
        }                                                             \
    } while (0)

/* Compares two strings, either of which may be NULL. */
#define CHECK_STR(A, B)                                               \
    do {                                                              \
        const char *a_ = (A);                                         \
        const char *b_ = (B);                                         \
                                                                      \
        if (a_ != b_ && (!a_ || !b_ || strcmp(a_, b_))) {             \
            unit_fail(__FILE__, __LINE__, "%s == %s: '%s' != '%s'",   \
                      #A, #B, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            return;                                                   \
        }                                                             \
    } while (0)

#endif
