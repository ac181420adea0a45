/* playbook.c: mgmt's own runner for an Ansible-compatible subset of YAML
 * playbooks (see playbook.h; the playbooks live in playbooks/).
 *
 * DESIGN: a playbook is loaded with libyaml's document API into plays,
 * tasks and handlers.  Every key, module, module argument, `when:`-style
 * expression and `{{ }}` template is checked at load time, so a mistake is
 * refused before anything runs, with a message naming the task and the key
 * (playbook_check() stops there).  A run first gathers facts with one
 * command, then runs each task as ONE shell command on the target through
 * the injected transport: the command checks the current state, changes it
 * only when needed and prints a marker line, KVMSTACK-CHANGED or
 * KVMSTACK-OK, as the last line of its stdout (the tools it runs write to
 * stderr).  `command` and `shell` print KVMSTACK-RUN or KVMSTACK-OK as their
 * FIRST line instead, before the user's command can print anything, so its
 * output cannot fake a marker.  A non-zero exit status means failed.  The
 * content of `copy`/`template` travels on the command's standard input; a
 * file bigger than COPY_INLINE_MAX is sent only after a first command
 * found that the target's copy differs (sha256), so an unchanged agent
 * binary costs one round trip and no transfer.  The transport is either
 * one exec per command (the caller's) or playbook_shell_exec(): one
 * long-lived shell reading framed commands from a stream, which saves the
 * SSH session set-up that otherwise dominates each task.
 *
 * SECURITY (quoting): no string that comes from a playbook, a variable, a
 * fact, a registered result or a template value is ever pasted into a
 * command as shell code.  Each module's script is fixed text; the values
 * it works on are assigned to shell variables at its top, as
 * `name='value'` made by shell_quote() (single quotes; ' becomes '\''),
 * and the fixed text only expands them inside double quotes.  The words of
 * `command:` and of a service's `daemon:` are split by the runner first
 * (shell-like quoting, no expansion) and each word is rendered and quoted
 * alone, so a value is always exactly one argument.  A `shell:` script is
 * code by its author's choice; the only values put into it are its
 * `{{ expr }}` results, and each one is assigned to a variable
 * KVMSTACK_Vn='...' and replaced by a reference to it ("${KVMSTACK_Vn}",
 * adjusted to the quoting context the template sits in), so the value is
 * expanded by the shell as data and never parsed as code, whatever the
 * context really is.  File contents never appear in a command at all.
 *
 * Expressions (`when`, `changed_when`, `failed_when`, and inside `{{ }}`)
 * are a small Jinja-like language: literals ('str', 1, 1.5, true, none,
 * [list]), variables with .attr and [index], == != < <= > >=, in, not in,
 * is [not] defined/undefined/none/succeeded/failed/changed/skipped, not,
 * and, or, parentheses, and the filters default/d, bool, int, string,
 * lower, upper, trim, length/count.  Variables are looked up in the extra
 * vars, then registered results, then the play's vars (templated lazily),
 * then the facts.  Using an undefined variable is an error, except under
 * `is defined` and `| default`. */
#include "playbook.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("mgmt.playbook");

#define PLAYBOOK_MAX_SIZE (1024 * 1024)          /* Bytes of YAML. */
#define YAML_MAX_DEPTH 64                        /* Nesting of nodes. */
#define YAML_MAX_NODES 100000                    /* After alias expansion. */
#define TEMPLATE_MAX_DEPTH 10                    /* Vars naming vars. */
#define COPY_INLINE_MAX (64 * 1024)              /* Sent with the check. */
#define COPY_SRC_MAX (512 * 1024 * 1024)         /* Largest local src. */
#define DETAIL_STDERR_LINES 20
#define DETAIL_COMMAND_MAX 4096

/* ---- Shell quoting ---- */

/* Appends 's' to 'b' as one single-quoted shell word. */
static void
sbuf_add_quoted(struct sbuf *b, const char *s)
{
    sbuf_addstr(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            sbuf_addstr(b, "'\\''");
        } else {
            sbuf_add(b, p, 1);
        }
    }
    sbuf_addstr(b, "'");
}

char *
shell_quote(const char *s)
{
    struct sbuf b;

    sbuf_init(&b);
    sbuf_add_quoted(&b, s);
    return sbuf_take(&b);
}

/* Appends the assignment "var='value'" and a newline to script 'b'. */
static void
sh_assign(struct sbuf *b, const char *var, const char *value)
{
    sbuf_addf(b, "%s=", var);
    sbuf_add_quoted(b, value ? value : "");
    sbuf_addstr(b, "\n");
}

/* ---- Values (jansson values; NULL is "undefined") ---- */

/* Parses a YAML 1.1 / Ansible boolean word into '*out'. */
static bool
word_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "y", "1" };
    static const char *const no[] = { "no", "false", "off", "n", "0" };

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* True if 's' is entirely a finite decimal number; stores it in '*d'. */
static bool
str_number(const char *s, double *d)
{
    char *end;

    while (isspace((unsigned char) *s)) {
        s++;
    }
    if (!*s || (!isdigit((unsigned char) *s) && *s != '-' && *s != '+'
                && *s != '.')) {
        return false;
    }
    errno = 0;
    *d = strtod(s, &end);
    while (isspace((unsigned char) *end)) {
        end++;
    }
    return !*end && !errno && isfinite(*d);
}

/* True if 'v' is a number, a boolean or a numeric string; stores it. */
static bool
value_number(const json_t *v, double *d)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        *d = (double) json_integer_value(v);
        return true;
    case JSON_REAL:
        *d = json_real_value(v);
        return true;
    case JSON_TRUE:
        *d = 1;
        return true;
    case JSON_FALSE:
        *d = 0;
        return true;
    case JSON_STRING:
        return str_number(json_string_value(v), d);
    default:
        return false;
    }
}

/* Jinja-like truth: none, false, 0, "", [], {} and the strings "false",
 * "no", "off", "0" (any case) are false. */
static bool
value_truthy(const json_t *v)
{
    bool b;

    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_STRING:
        if (!*json_string_value(v)) {
            return false;
        }
        return !word_bool(json_string_value(v), &b) || b;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    }
    return false;
}

/* 'v' as template text: strings as they are, numbers in decimal, booleans
 * as Python writes them (True/False), none as "", lists and dicts as
 * JSON.  Caller frees. */
static char *
value_to_string(const json_t *v)
{
    char *json;
    char *s;

    switch (json_typeof(v)) {
    case JSON_STRING:
        return xstrdup(json_string_value(v));
    case JSON_INTEGER:
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return xasprintf("%.15g", json_real_value(v));
    case JSON_TRUE:
        return xstrdup("True");
    case JSON_FALSE:
        return xstrdup("False");
    case JSON_NULL:
        return xstrdup("");
    default:
        json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        s = xstrdup(json ? json : "");
        free(json);
        return s;
    }
}

static bool
value_is_numberish(const json_t *v)
{
    return json_is_number(v) || json_is_boolean(v);
}

/* Equality as Jinja sees it, except that a numeric string equals the
 * number it spells (YAML and extra vars blur the two). */
static bool
value_equal(const json_t *a, const json_t *b)
{
    double x;
    double y;

    if (json_is_string(a) && json_is_string(b)) {
        return !strcmp(json_string_value(a), json_string_value(b));
    }
    if ((value_is_numberish(a) || json_is_string(a))
        && (value_is_numberish(b) || json_is_string(b))) {
        return value_number(a, &x) && value_number(b, &y) && x == y;
    }
    return json_equal((json_t *) a, (json_t *) b);
}

/* Orders 'a' and 'b' into '*cmp': numerically when both are numbers or
 * numeric strings, else as strings.  Returns -1 when they do not order. */
static int
value_compare(const json_t *a, const json_t *b, int *cmp)
{
    double x;
    double y;

    if (value_number(a, &x) && value_number(b, &y)) {
        *cmp = x < y ? -1 : x > y;
        return 0;
    }
    if (json_is_string(a) && json_is_string(b)) {
        *cmp = strcmp(json_string_value(a), json_string_value(b));
        return 0;
    }
    return -1;
}

/* ---- Expressions ---- */

enum expr_op {
    EXPR_LITERAL,               /* 'value'. */
    EXPR_VAR,                   /* 'name'. */
    EXPR_ATTR,                  /* 'left'.'name'. */
    EXPR_INDEX,                 /* 'left'['right']. */
    EXPR_LIST,                  /* ['args'...]. */
    EXPR_NOT,                   /* not 'left'. */
    EXPR_AND,
    EXPR_OR,
    EXPR_EQ,
    EXPR_NE,
    EXPR_LT,
    EXPR_LE,
    EXPR_GT,
    EXPR_GE,
    EXPR_IN,
    EXPR_NOT_IN,
    EXPR_TEST,                  /* 'left' is ['negate'] 'name'. */
    EXPR_FILTER,                /* 'left' | 'name'('args'...). */
};

struct expr {
    enum expr_op op;
    json_t *value;              /* EXPR_LITERAL; owned. */
    char *name;                 /* Variable, attribute, test or filter. */
    bool negate;                /* EXPR_TEST: "is not". */
    struct expr *left;
    struct expr *right;
    struct expr **args;         /* EXPR_LIST items, EXPR_FILTER args. */
    size_t n_args;
};

static void
expr_free(struct expr *e)
{
    if (!e) {
        return;
    }
    json_decref(e->value);
    free(e->name);
    expr_free(e->left);
    expr_free(e->right);
    for (size_t i = 0; i < e->n_args; i++) {
        expr_free(e->args[i]);
    }
    free(e->args);
    free(e);
}

static struct expr *
expr_new(enum expr_op op)
{
    struct expr *e = xcalloc(1, sizeof *e);

    e->op = op;
    return e;
}

static struct expr *
expr_binary(enum expr_op op, struct expr *left, struct expr *right)
{
    struct expr *e = expr_new(op);

    e->left = left;
    e->right = right;
    return e;
}

static void
expr_add_arg(struct expr *e, struct expr *arg)
{
    e->args = xrealloc(e->args, (e->n_args + 1) * sizeof *e->args);
    e->args[e->n_args++] = arg;
}

enum tok {
    TOK_END,
    TOK_IDENT,
    TOK_NUMBER,
    TOK_STRING,
    TOK_PUNCT,
};

struct lexer {
    const char *src;            /* The whole expression, for messages. */
    const char *p;              /* Next character to scan. */
    enum tok tok;               /* Current token. */
    struct sbuf text;           /* Its text (a string literal decoded). */
};

static int lex_error(struct lexer *lx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
lex_error(struct lexer *lx, const char *fmt, ...)
{
    AUTOFREE char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = xvasprintf(fmt, ap);
    va_end(ap);
    error_report(PROBLEM_INVALID_ARGUMENT, "cannot parse expression '%s': "
                 "%s", lx->src, why);
    return -1;
}

/* Scans the next token into 'lx'. */
static int
lex_next(struct lexer *lx)
{
    static const char *const two[] = { "==", "!=", "<=", ">=" };
    const char *p = lx->p;
    const char *start;

    lx->text.len = 0;
    lx->text.s[0] = '\0';
    while (isspace((unsigned char) *p)) {
        p++;
    }
    start = p;
    if (!*p) {
        lx->tok = TOK_END;
    } else if (isalpha((unsigned char) *p) || *p == '_') {
        while (isalnum((unsigned char) *p) || *p == '_') {
            p++;
        }
        sbuf_add(&lx->text, start, (size_t) (p - start));
        lx->tok = TOK_IDENT;
    } else if (isdigit((unsigned char) *p)) {
        while (isdigit((unsigned char) *p)) {
            p++;
        }
        if (*p == '.' && isdigit((unsigned char) p[1])) {
            p++;
            while (isdigit((unsigned char) *p)) {
                p++;
            }
        }
        if ((*p == 'e' || *p == 'E')
            && (isdigit((unsigned char) p[1])
                || ((p[1] == '-' || p[1] == '+')
                    && isdigit((unsigned char) p[2])))) {
            p += 2;
            while (isdigit((unsigned char) *p)) {
                p++;
            }
        }
        sbuf_add(&lx->text, start, (size_t) (p - start));
        lx->tok = TOK_NUMBER;
    } else if (*p == '\'' || *p == '"') {
        char q = *p++;

        while (*p && *p != q) {
            if (*p == '\\' && p[1]) {
                p++;
                sbuf_add(&lx->text, *p == 'n' ? "\n" : *p == 't' ? "\t" : p,
                         1);
            } else {
                sbuf_add(&lx->text, p, 1);
            }
            p++;
        }
        if (!*p) {
            return lex_error(lx, "unterminated string");
        }
        p++;
        lx->tok = TOK_STRING;
    } else {
        lx->tok = TOK_PUNCT;
        for (size_t i = 0; i < ARRAY_SIZE(two); i++) {
            if (!strncmp(p, two[i], 2)) {
                sbuf_add(&lx->text, p, 2);
                lx->p = p + 2;
                return 0;
            }
        }
        if (!strchr("<>()[],.|-", *p)) {
            return lex_error(lx, "unexpected character '%c'", *p);
        }
        sbuf_add(&lx->text, p, 1);
        p++;
    }
    lx->p = p;
    return 0;
}

static bool
lex_is(const struct lexer *lx, enum tok tok, const char *text)
{
    return lx->tok == tok && !strcmp(lx->text.s, text);
}

static bool
lex_punct(const struct lexer *lx, const char *text)
{
    return lex_is(lx, TOK_PUNCT, text);
}

static bool
lex_kw(const struct lexer *lx, const char *text)
{
    return lex_is(lx, TOK_IDENT, text);
}

static int
lex_unexpected(struct lexer *lx)
{
    if (lx->tok == TOK_END) {
        return lex_error(lx, "unexpected end of expression");
    }
    return lex_error(lx, "unexpected '%s'", lx->text.s);
}

/* Consumes the punctuation 'text' or fails. */
static int
lex_expect(struct lexer *lx, const char *text)
{
    if (!lex_punct(lx, text)) {
        if (lx->tok == TOK_END) {
            return lex_error(lx, "missing '%s'", text);
        }
        return lex_error(lx, "expected '%s', found '%s'", text, lx->text.s);
    }
    return lex_next(lx);
}

static const char *const expr_tests[] = {
    "defined", "undefined", "none", "succeeded", "success", "failed",
    "failure", "changed", "change", "skipped", "skip", NULL,
};

/* Filters and how many arguments each takes at most. */
static const struct {
    const char *name;
    size_t max_args;
} expr_filters[] = {
    { "default", 2 }, { "d", 2 }, { "bool", 0 }, { "int", 0 },
    { "string", 0 }, { "lower", 0 }, { "upper", 0 }, { "trim", 0 },
    { "length", 0 }, { "count", 0 },
};

static bool
str_in(const char *s, const char *const *list)
{
    for (; list && *list; list++) {
        if (!strcmp(s, *list)) {
            return true;
        }
    }
    return false;
}

static struct expr *parse_or(struct lexer *lx);

static struct expr *
parse_primary(struct lexer *lx)
{
    struct expr *e;
    double d;
    bool neg = false;

    if (lex_punct(lx, "-")) {
        neg = true;
        if (lex_next(lx) < 0) {
            return NULL;
        }
        if (lx->tok != TOK_NUMBER) {
            lex_unexpected(lx);
            return NULL;
        }
    }
    if (lx->tok == TOK_NUMBER) {
        e = expr_new(EXPR_LITERAL);
        if (strpbrk(lx->text.s, ".eE")) {
            d = strtod(lx->text.s, NULL);
            e->value = json_real(neg ? -d : d);
        } else {
            long long n = strtoll(lx->text.s, NULL, 10);

            e->value = json_integer(neg ? -n : n);
        }
    } else if (lx->tok == TOK_STRING) {
        e = expr_new(EXPR_LITERAL);
        e->value = json_string(lx->text.s);
        if (!e->value) {
            lex_error(lx, "string is not valid UTF-8");
            expr_free(e);
            return NULL;
        }
    } else if (lx->tok == TOK_IDENT) {
        const char *s = lx->text.s;

        if (str_in(s, (const char *const[]) { "and", "or", "not", "in",
                                              "is", NULL })) {
            lex_unexpected(lx);
            return NULL;
        }
        e = expr_new(EXPR_LITERAL);
        if (!strcmp(s, "true") || !strcmp(s, "True")) {
            e->value = json_true();
        } else if (!strcmp(s, "false") || !strcmp(s, "False")) {
            e->value = json_false();
        } else if (!strcmp(s, "none") || !strcmp(s, "None")
                   || !strcmp(s, "null")) {
            e->value = json_null();
        } else {
            e->op = EXPR_VAR;
            e->name = xstrdup(s);
        }
    } else if (lex_punct(lx, "(")) {
        if (lex_next(lx) < 0 || !(e = parse_or(lx))) {
            return NULL;
        }
        if (lex_expect(lx, ")") < 0) {
            expr_free(e);
            return NULL;
        }
        return e;
    } else if (lex_punct(lx, "[")) {
        e = expr_new(EXPR_LIST);
        if (lex_next(lx) < 0) {
            expr_free(e);
            return NULL;
        }
        while (!lex_punct(lx, "]")) {
            struct expr *item = parse_or(lx);

            if (!item) {
                expr_free(e);
                return NULL;
            }
            expr_add_arg(e, item);
            if (lex_punct(lx, ",")) {
                if (lex_next(lx) < 0) {
                    expr_free(e);
                    return NULL;
                }
            } else if (!lex_punct(lx, "]")) {
                lex_expect(lx, "]");
                expr_free(e);
                return NULL;
            }
        }
    } else {
        lex_unexpected(lx);
        return NULL;
    }
    if (lex_next(lx) < 0) {
        expr_free(e);
        return NULL;
    }
    return e;
}

static struct expr *
parse_postfix(struct lexer *lx)
{
    struct expr *e = parse_primary(lx);
    struct expr *index;

    while (e && (lex_punct(lx, ".") || lex_punct(lx, "["))) {
        if (lex_punct(lx, ".")) {
            if (lex_next(lx) < 0) {
                goto fail;
            }
            if (lx->tok != TOK_IDENT) {
                lex_unexpected(lx);
                goto fail;
            }
            e = expr_binary(EXPR_ATTR, e, NULL);
            e->name = xstrdup(lx->text.s);
            if (lex_next(lx) < 0) {
                goto fail;
            }
        } else {
            if (lex_next(lx) < 0 || !(index = parse_or(lx))) {
                goto fail;
            }
            e = expr_binary(EXPR_INDEX, e, index);
            if (lex_expect(lx, "]") < 0) {
                goto fail;
            }
        }
    }
    return e;

fail:
    expr_free(e);
    return NULL;
}

static struct expr *
parse_filtered(struct lexer *lx)
{
    struct expr *e = parse_postfix(lx);

    while (e && lex_punct(lx, "|")) {
        size_t max_args = SIZE_MAX;
        struct expr *f;

        if (lex_next(lx) < 0) {
            goto fail;
        }
        if (lx->tok != TOK_IDENT) {
            lex_unexpected(lx);
            goto fail;
        }
        if (!strcmp(lx->text.s, "quote")) {
            lex_error(lx, "drop '| quote': the runner quotes every value "
                      "itself");
            goto fail;
        }
        for (size_t i = 0; i < ARRAY_SIZE(expr_filters); i++) {
            if (!strcmp(lx->text.s, expr_filters[i].name)) {
                max_args = expr_filters[i].max_args;
            }
        }
        if (max_args == SIZE_MAX) {
            lex_error(lx, "unknown filter '%s'", lx->text.s);
            goto fail;
        }
        f = expr_binary(EXPR_FILTER, e, NULL);
        f->name = xstrdup(lx->text.s);
        e = f;
        if (lex_next(lx) < 0) {
            goto fail;
        }
        if (lex_punct(lx, "(")) {
            if (lex_next(lx) < 0) {
                goto fail;
            }
            while (!lex_punct(lx, ")")) {
                struct expr *arg = parse_or(lx);

                if (!arg) {
                    goto fail;
                }
                expr_add_arg(e, arg);
                if (lex_punct(lx, ",")) {
                    if (lex_next(lx) < 0) {
                        goto fail;
                    }
                } else if (!lex_punct(lx, ")")) {
                    lex_expect(lx, ")");
                    goto fail;
                }
            }
            if (lex_next(lx) < 0) {
                goto fail;
            }
        }
        if (e->n_args > max_args) {
            lex_error(lx, "filter '%s' takes at most %zu argument(s)",
                      e->name, max_args);
            goto fail;
        }
    }
    return e;

fail:
    expr_free(e);
    return NULL;
}

static struct expr *
parse_cmp(struct lexer *lx)
{
    static const struct {
        const char *text;
        enum expr_op op;
    } ops[] = {
        { "==", EXPR_EQ }, { "!=", EXPR_NE }, { "<", EXPR_LT },
        { "<=", EXPR_LE }, { ">", EXPR_GT }, { ">=", EXPR_GE },
    };
    struct expr *left = parse_filtered(lx);
    struct expr *right;
    enum expr_op op = EXPR_LITERAL;

    if (!left) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
        if (lex_punct(lx, ops[i].text)) {
            op = ops[i].op;
        }
    }
    if (lex_kw(lx, "in")) {
        op = EXPR_IN;
    } else if (lex_kw(lx, "not")) {
        if (lex_next(lx) < 0) {
            goto fail;
        }
        if (!lex_kw(lx, "in")) {
            lex_error(lx, "expected 'in' after 'not'");
            goto fail;
        }
        op = EXPR_NOT_IN;
    } else if (lex_kw(lx, "is")) {
        struct expr *test = expr_binary(EXPR_TEST, left, NULL);

        left = test;
        if (lex_next(lx) < 0) {
            goto fail;
        }
        if (lex_kw(lx, "not")) {
            test->negate = true;
            if (lex_next(lx) < 0) {
                goto fail;
            }
        }
        if (lx->tok != TOK_IDENT || !str_in(lx->text.s, expr_tests)) {
            if (lx->tok == TOK_IDENT) {
                lex_error(lx, "unknown test '%s'", lx->text.s);
            } else {
                lex_unexpected(lx);
            }
            goto fail;
        }
        test->name = xstrdup(lx->text.s);
        if (lex_next(lx) < 0) {
            goto fail;
        }
        return test;
    }
    if (op == EXPR_LITERAL) {
        return left;
    }
    if (lex_next(lx) < 0 || !(right = parse_filtered(lx))) {
        goto fail;
    }
    return expr_binary(op, left, right);

fail:
    expr_free(left);
    return NULL;
}

static struct expr *
parse_not(struct lexer *lx)
{
    struct expr *operand;

    if (!lex_kw(lx, "not")) {
        return parse_cmp(lx);
    }
    if (lex_next(lx) < 0 || !(operand = parse_not(lx))) {
        return NULL;
    }
    return expr_binary(EXPR_NOT, operand, NULL);
}

static struct expr *
parse_and(struct lexer *lx)
{
    struct expr *e = parse_not(lx);

    while (e && lex_kw(lx, "and")) {
        struct expr *right;

        if (lex_next(lx) < 0 || !(right = parse_not(lx))) {
            expr_free(e);
            return NULL;
        }
        e = expr_binary(EXPR_AND, e, right);
    }
    return e;
}

static struct expr *
parse_or(struct lexer *lx)
{
    struct expr *e = parse_and(lx);

    while (e && lex_kw(lx, "or")) {
        struct expr *right;

        if (lex_next(lx) < 0 || !(right = parse_and(lx))) {
            expr_free(e);
            return NULL;
        }
        e = expr_binary(EXPR_OR, e, right);
    }
    return e;
}

/* Parses the expression 'src'.  Returns NULL, with an error reported, if
 * it is not one.  Caller frees with expr_free(). */
static struct expr *
expr_parse(const char *src)
{
    struct lexer lx = { .src = src, .p = src };
    struct expr *e = NULL;

    sbuf_init(&lx.text);
    if (lex_next(&lx) < 0) {
        goto out;
    }
    if (lx.tok == TOK_END) {
        lex_error(&lx, "empty expression");
        goto out;
    }
    e = parse_or(&lx);
    if (e && lx.tok != TOK_END) {
        lex_error(&lx, "unexpected '%s' after the expression", lx.text.s);
        expr_free(e);
        e = NULL;
    }

out:
    sbuf_destroy(&lx.text);
    return e;
}

/* Where variables come from while a task runs. */
struct scope {
    json_t *extra;              /* Extra vars; borrowed, may be NULL. */
    json_t *regs;               /* Registered results; borrowed. */
    json_t *play_vars;          /* The play's vars (templated); borrowed. */
    json_t *facts;              /* Gathered facts; borrowed. */
    int depth;                  /* Play vars being templated now. */
};

static int value_render(const json_t *v, struct scope *sc, json_t **out);

/* Looks variable 'name' up in 'sc'.  Sets '*out' to a new reference, or
 * to NULL if it is undefined.  Returns -1 on error. */
static int
scope_lookup(struct scope *sc, const char *name, json_t **out)
{
    json_t *v;
    int rc;

    *out = NULL;
    if ((v = json_object_get(sc->extra, name))
        || (v = json_object_get(sc->regs, name))) {
        *out = json_incref(v);
        return 0;
    }
    if ((v = json_object_get(sc->play_vars, name))) {
        if (sc->depth >= TEMPLATE_MAX_DEPTH) {
            error_report(PROBLEM_INVALID_ARGUMENT, "variable '%s': "
                         "templates nest more than %d deep (a loop?)", name,
                         TEMPLATE_MAX_DEPTH);
            return -1;
        }
        sc->depth++;
        rc = value_render(v, sc, out);
        sc->depth--;
        return rc;
    }
    if ((v = json_object_get(sc->facts, name))) {
        *out = json_incref(v);
    }
    return 0;
}

/* A readable name for 'e' in "is undefined" messages.  Caller frees. */
static char *
expr_describe(const struct expr *e)
{
    AUTOFREE char *left = NULL;

    switch (e->op) {
    case EXPR_VAR:
        return xstrdup(e->name);
    case EXPR_ATTR:
        left = expr_describe(e->left);
        return xasprintf("%s.%s", left, e->name);
    case EXPR_INDEX:
        left = expr_describe(e->left);
        return xasprintf("%s[...]", left);
    case EXPR_FILTER:
        left = expr_describe(e->left);
        return xasprintf("%s | %s", left, e->name);
    default:
        return xstrdup("expression");
    }
}

static int expr_eval(const struct expr *e, struct scope *sc, json_t **out);

/* Reports why 'e' is undefined: the variable, or the attribute or item
 * that its (defined) container lacks. */
static void
expr_report_undefined(const struct expr *e, struct scope *sc)
{
    AUTOFREE char *what = NULL;
    json_t *left = NULL;

    if ((e->op == EXPR_ATTR || e->op == EXPR_INDEX)
        && expr_eval(e->left, sc, &left) == 0) {
        if (!left) {
            expr_report_undefined(e->left, sc);
            return;
        }
        json_decref(left);
        what = expr_describe(e->left);
        if (e->op == EXPR_ATTR) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'%s' has no attribute "
                         "'%s'", what, e->name);
        } else {
            error_report(PROBLEM_INVALID_ARGUMENT, "'%s' has no such item",
                         what);
        }
        return;
    }
    what = expr_describe(e);
    error_report(PROBLEM_INVALID_ARGUMENT, "'%s' is undefined", what);
}

/* Like expr_eval() but an undefined result is an error. */
static int
expr_need(const struct expr *e, struct scope *sc, json_t **out)
{
    if (expr_eval(e, sc, out) < 0) {
        return -1;
    }
    if (!*out) {
        expr_report_undefined(e, sc);
        return -1;
    }
    return 0;
}

/* Evaluates the test EXPR_TEST 'e' on 'v' (may be NULL). */
static int
eval_test(const struct expr *e, struct scope *sc, const json_t *v,
          bool *result)
{
    const char *t = e->name;
    AUTOFREE char *what = NULL;
    const char *field;

    if (!strcmp(t, "defined") || !strcmp(t, "undefined")) {
        *result = (v != NULL) == !strcmp(t, "defined");
        return 0;
    }
    if (!v) {
        expr_report_undefined(e->left, sc);
        return -1;
    }
    if (!strcmp(t, "none")) {
        *result = json_is_null(v);
        return 0;
    }
    if (!json_is_object(v)) {
        what = expr_describe(e->left);
        error_report(PROBLEM_INVALID_ARGUMENT, "test '%s' needs a "
                     "registered result, and '%s' is not one", t, what);
        return -1;
    }
    field = (!strcmp(t, "changed") || !strcmp(t, "change")) ? "changed"
            : (!strcmp(t, "skipped") || !strcmp(t, "skip")) ? "skipped"
            : "failed";
    *result = value_truthy(json_object_get(v, field));
    if (!strcmp(t, "succeeded") || !strcmp(t, "success")) {
        *result = !*result;
    }
    return 0;
}

/* Applies filter EXPR_FILTER 'e' to 'v' (may be NULL) into '*out'. */
static int
eval_filter(const struct expr *e, struct scope *sc, json_t *v, json_t **out)
{
    const char *f = e->name;
    AUTOFREE char *s = NULL;
    double d;
    bool b;

    *out = NULL;
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        json_t *flag = NULL;
        bool use_default = !v;

        if (v && e->n_args > 1) {
            if (expr_need(e->args[1], sc, &flag) < 0) {
                return -1;
            }
            use_default = value_truthy(flag) && !value_truthy(v);
            json_decref(flag);
        }
        if (!use_default) {
            *out = json_incref(v);
            return 0;
        }
        if (!e->n_args) {
            *out = json_string("");
            return 0;
        }
        return expr_eval(e->args[0], sc, out);
    }
    if (!v) {
        expr_report_undefined(e->left, sc);
        return -1;
    }
    if (!strcmp(f, "bool")) {
        if (json_is_string(v) && word_bool(json_string_value(v), &b)) {
            *out = json_boolean(b);
        } else {
            *out = json_boolean(!json_is_string(v) && value_truthy(v));
        }
    } else if (!strcmp(f, "int")) {
        *out = json_integer(value_number(v, &d) ? (json_int_t) d : 0);
    } else if (!strcmp(f, "length") || !strcmp(f, "count")) {
        s = json_is_string(v) ? NULL : value_to_string(v);
        *out = json_integer(json_is_array(v) ? (json_int_t) json_array_size(v)
                            : json_is_object(v)
                            ? (json_int_t) json_object_size(v)
                            : (json_int_t) strlen(json_is_string(v)
                                                  ? json_string_value(v)
                                                  : s));
    } else {
        char *p;
        char *end;

        s = value_to_string(v);
        if (!strcmp(f, "lower") || !strcmp(f, "upper")) {
            for (p = s; *p; p++) {
                *p = (char) (!strcmp(f, "lower") ? tolower((unsigned char) *p)
                             : toupper((unsigned char) *p));
            }
        } else if (!strcmp(f, "trim")) {
            for (p = s; isspace((unsigned char) *p); p++) {
                continue;
            }
            memmove(s, p, strlen(p) + 1);
            end = s + strlen(s);
            while (end > s && isspace((unsigned char) end[-1])) {
                *--end = '\0';
            }
        }
        *out = json_string(s);
    }
    return 0;
}

/* Evaluates 'e' in 'sc' into '*out': a new reference, or NULL when the
 * result is undefined.  Returns -1 with an error reported. */
static int
expr_eval(const struct expr *e, struct scope *sc, json_t **out)
{
    json_t *a = NULL;
    json_t *b = NULL;
    int rc = -1;
    bool t;
    int cmp;

    *out = NULL;
    switch (e->op) {
    case EXPR_LITERAL:
        *out = json_incref(e->value);
        return 0;
    case EXPR_VAR:
        return scope_lookup(sc, e->name, out);
    case EXPR_ATTR:
        if (expr_eval(e->left, sc, &a) < 0) {
            return -1;
        }
        *out = json_incref(json_object_get(a, e->name));
        json_decref(a);
        return 0;
    case EXPR_INDEX:
        if (expr_eval(e->left, sc, &a) < 0
            || expr_need(e->right, sc, &b) < 0) {
            break;
        }
        if (json_is_object(a) && json_is_string(b)) {
            *out = json_incref(json_object_get(a, json_string_value(b)));
        } else if (json_is_array(a) && json_is_integer(b)) {
            json_int_t i = json_integer_value(b);

            if (i < 0) {
                i += (json_int_t) json_array_size(a);
            }
            *out = i < 0 ? NULL : json_incref(json_array_get(a, (size_t) i));
        }
        rc = 0;
        break;
    case EXPR_LIST:
        *out = json_array();
        for (size_t i = 0; i < e->n_args; i++) {
            if (expr_need(e->args[i], sc, &a) < 0) {
                json_decref(*out);
                *out = NULL;
                return -1;
            }
            json_array_append_new(*out, a);
        }
        return 0;
    case EXPR_NOT:
        if (expr_need(e->left, sc, &a) < 0) {
            return -1;
        }
        *out = json_boolean(!value_truthy(a));
        json_decref(a);
        return 0;
    case EXPR_AND:
    case EXPR_OR:
        if (expr_need(e->left, sc, &a) < 0) {
            return -1;
        }
        t = value_truthy(a);
        json_decref(a);
        if (t == (e->op == EXPR_OR)) {
            *out = json_boolean(t);
            return 0;
        }
        if (expr_need(e->right, sc, &a) < 0) {
            return -1;
        }
        *out = json_boolean(value_truthy(a));
        json_decref(a);
        return 0;
    case EXPR_EQ:
    case EXPR_NE:
    case EXPR_LT:
    case EXPR_LE:
    case EXPR_GT:
    case EXPR_GE:
    case EXPR_IN:
    case EXPR_NOT_IN:
        if (expr_need(e->left, sc, &a) < 0
            || expr_need(e->right, sc, &b) < 0) {
            break;
        }
        if (e->op == EXPR_EQ || e->op == EXPR_NE) {
            t = value_equal(a, b) == (e->op == EXPR_EQ);
        } else if (e->op == EXPR_IN || e->op == EXPR_NOT_IN) {
            if (json_is_array(b)) {
                size_t i;
                json_t *item;

                t = false;
                json_array_foreach(b, i, item) {
                    t = t || value_equal(a, item);
                }
            } else if (json_is_object(b) && json_is_string(a)) {
                t = json_object_get(b, json_string_value(a)) != NULL;
            } else if (json_is_string(b)) {
                AUTOFREE char *needle = value_to_string(a);

                t = strstr(json_string_value(b), needle) != NULL;
            } else {
                error_report(PROBLEM_INVALID_ARGUMENT, "'in' needs a list, "
                             "a dict or a string on its right");
                break;
            }
            t = t == (e->op == EXPR_IN);
        } else {
            if (value_compare(a, b, &cmp) < 0) {
                AUTOFREE char *x = value_to_string(a);
                AUTOFREE char *y = value_to_string(b);

                error_report(PROBLEM_INVALID_ARGUMENT, "cannot order '%s' "
                             "and '%s'", x, y);
                break;
            }
            t = e->op == EXPR_LT ? cmp < 0 : e->op == EXPR_LE ? cmp <= 0
                : e->op == EXPR_GT ? cmp > 0 : cmp >= 0;
        }
        *out = json_boolean(t);
        rc = 0;
        break;
    case EXPR_TEST:
        if (expr_eval(e->left, sc, &a) < 0 || eval_test(e, sc, a, &t) < 0) {
            break;
        }
        *out = json_boolean(t != e->negate);
        rc = 0;
        break;
    case EXPR_FILTER:
        if (expr_eval(e->left, sc, &a) < 0) {
            break;
        }
        rc = eval_filter(e, sc, a, out);
        break;
    }
    json_decref(a);
    json_decref(b);
    return rc;
}

/* Evaluates condition 'e' to a boolean. */
static int
expr_truth(const struct expr *e, struct scope *sc, bool *result)
{
    json_t *v;

    if (expr_need(e, sc, &v) < 0) {
        return -1;
    }
    *result = value_truthy(v);
    json_decref(v);
    return 0;
}

/* ---- Templates: "{{ expr }}" in strings ---- */

/* Finds the first "{{" at or after 'from' in 's' and its "}}".  Returns 1
 * and sets '*start' (at "{{") and '*end' (past "}}"), 0 if there is none,
 * -1 (error reported) on an unterminated one or a Jinja statement. */
static int
tmpl_find(const char *s, size_t from, size_t *start, size_t *end)
{
    const char *open = strstr(s + from, "{{");
    const char *stmt = strstr(s + from, "{%");
    const char *close;

    if (stmt && (!open || stmt < open)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "Jinja statements "
                     "('{%% ... %%}') are not supported");
        return -1;
    }
    if (!open) {
        return 0;
    }
    close = strstr(open + 2, "}}");
    if (!close) {
        error_report(PROBLEM_INVALID_ARGUMENT, "unterminated '{{' in '%s'",
                     s);
        return -1;
    }
    *start = (size_t) (open - s);
    *end = (size_t) (close + 2 - s);
    return 1;
}

/* Evaluates the template expression s[start, end) ("{{ ... }}") into
 * '*out' (a new reference).  With 'sc' NULL, only parses it. */
static int
tmpl_eval(const char *s, size_t start, size_t end, struct scope *sc,
          json_t **out)
{
    AUTOFREE char *src = xstrndup(s + start + 2, end - start - 4);
    struct expr *e = expr_parse(src);
    int rc;

    *out = NULL;
    if (!e) {
        return -1;
    }
    rc = sc ? expr_need(e, sc, out) : 0;
    expr_free(e);
    return rc;
}

/* Renders template string 's' into '*out' (caller frees).  With 'sc' NULL
 * only checks it ('out' may then be NULL). */
static int
tmpl_render(const char *s, struct scope *sc, char **out)
{
    struct sbuf b;
    size_t pos = 0;
    size_t start;
    size_t end;
    int found;

    sbuf_init(&b);
    while ((found = tmpl_find(s, pos, &start, &end)) > 0) {
        json_t *v;

        sbuf_add(&b, s + pos, start - pos);
        if (tmpl_eval(s, start, end, sc, &v) < 0) {
            found = -1;
            break;
        }
        if (v) {
            AUTOFREE char *text = value_to_string(v);

            sbuf_addstr(&b, text);
            json_decref(v);
        }
        pos = end;
    }
    if (found < 0) {
        sbuf_destroy(&b);
        return -1;
    }
    sbuf_addstr(&b, s + pos);
    if (out) {
        *out = sbuf_take(&b);
    } else {
        sbuf_destroy(&b);
    }
    return 0;
}

/* Renders 's' into the value '*out': when 's' is one "{{ expr }}" and
 * nothing else, the expression's own value (a list stays a list), else
 * the rendered string. */
static int
tmpl_render_value(const char *s, struct scope *sc, json_t **out)
{
    size_t start;
    size_t end;
    char *text;
    int found = tmpl_find(s, 0, &start, &end);

    *out = NULL;
    if (found < 0) {
        return -1;
    }
    if (found && start == 0 && !s[end]) {
        return tmpl_eval(s, start, end, sc, out);
    }
    if (tmpl_render(s, sc, &text) < 0) {
        return -1;
    }
    *out = json_string(text);
    free(text);
    if (!*out) {
        error_report(PROBLEM_INVALID_ARGUMENT, "rendered '%s' is not valid "
                     "UTF-8", s);
        return -1;
    }
    return 0;
}

/* Renders every string inside 'v' into '*out' (a new value). */
static int
value_render(const json_t *v, struct scope *sc, json_t **out)
{
    const char *key;
    json_t *item;
    json_t *r;
    size_t i;

    *out = NULL;
    if (json_is_string(v)) {
        return tmpl_render_value(json_string_value(v), sc, out);
    }
    if (json_is_array(v)) {
        *out = json_array();
        json_array_foreach(v, i, item) {
            if (value_render(item, sc, &r) < 0) {
                json_decref(*out);
                *out = NULL;
                return -1;
            }
            json_array_append_new(*out, r ? r : json_null());
        }
        return 0;
    }
    if (json_is_object(v)) {
        *out = json_object();
        json_object_foreach((json_t *) v, key, item) {
            if (value_render(item, sc, &r) < 0) {
                json_decref(*out);
                *out = NULL;
                return -1;
            }
            json_object_set_new(*out, key, r ? r : json_null());
        }
        return 0;
    }
    *out = json_incref((json_t *) v);
    return 0;
}

/* Checks every template inside 'v' (load time). */
static int
value_check(const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_string(v)) {
        return tmpl_render(json_string_value(v), NULL, NULL);
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (value_check(item) < 0) {
                return -1;
            }
        }
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *) v, key, item) {
            if (value_check(item) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Renders the `shell:` script 'script': every "{{ expr }}" becomes a
 * reference to a shell variable KVMSTACK_Vn whose assignment (value quoted
 * with shell_quote()) is appended to 'assign', prefixed with 'export ' if
 * 'export' is set; the script with the references goes to 'code'.  The
 * reference suits the quoting context the template sits in: "${V}" bare,
 * ${V} inside "...", '"${V}"' inside '...'.  The context is tracked
 * loosely ($( ), backquotes, comments); a wrong guess can only give a
 * wrong string, never run a value as code, because the shell expands a
 * variable's value as data.  With 'sc' NULL only checks the templates. */
static int
shell_render(const char *script, struct scope *sc, bool export,
             struct sbuf *assign, struct sbuf *code)
{
    enum { CTX_TOP, CTX_SQ, CTX_DQ, CTX_CMDSUB, CTX_BQ } stack[64];
    int parens[64];
    int depth = 0;
    int n_vars = 0;
    const char *p = script;

    stack[0] = CTX_TOP;
    parens[0] = 0;
    while (*p) {
        int ctx = stack[depth];
        bool bare = ctx == CTX_TOP || ctx == CTX_CMDSUB || ctx == CTX_BQ;

        if (p[0] == '{' && (p[1] == '{' || p[1] == '%')) {
            size_t start;
            size_t end;
            json_t *v;
            AUTOFREE char *text = NULL;
            AUTOFREE char *var = NULL;

            if (tmpl_find(p, 0, &start, &end) < 0
                || tmpl_eval(p, start, end, sc, &v) < 0) {
                return -1;
            }
            if (sc) {
                text = value_to_string(v);
                json_decref(v);
                var = xasprintf("KVMSTACK_V%d", ++n_vars);
                if (export) {
                    sbuf_addstr(assign, "export ");
                }
                sh_assign(assign, var, text);
                sbuf_addf(code, ctx == CTX_SQ ? "'\"${%s}\"'"
                          : ctx == CTX_DQ ? "${%s}" : "\"${%s}\"", var);
            }
            p += end;
            continue;
        }
        if (sc) {
            sbuf_add(code, p, 1);
        }
        if (ctx == CTX_SQ) {
            if (*p == '\'') {
                depth--;
            }
            p++;
            continue;
        }
        if (*p == '\\' && p[1]) {
            if (sc) {
                sbuf_add(code, p + 1, 1);
            }
            p += 2;
            continue;
        }
        if (depth >= (int) ARRAY_SIZE(stack) - 1) {
            error_report(PROBLEM_INVALID_ARGUMENT, "shell script nests "
                         "quotes too deep");
            return -1;
        }
        if (*p == '`') {
            if (ctx == CTX_BQ) {
                depth--;
            } else {
                stack[++depth] = CTX_BQ;
            }
        } else if (*p == '"') {
            if (ctx == CTX_DQ) {
                depth--;
            } else {
                stack[++depth] = CTX_DQ;
            }
        } else if (*p == '$' && p[1] == '(') {
            if (sc) {
                sbuf_add(code, p + 1, 1);
            }
            p++;
            stack[++depth] = CTX_CMDSUB;
            parens[depth] = 1;
        } else if (bare && *p == '\'') {
            stack[++depth] = CTX_SQ;
        } else if (ctx == CTX_CMDSUB && *p == '(') {
            parens[depth]++;
        } else if (ctx == CTX_CMDSUB && *p == ')') {
            if (--parens[depth] == 0) {
                depth--;
            }
        } else if (bare && *p == '#'
                   && (p == script || strchr(" \t\n;&|(", p[-1]))) {
            /* A comment: quotes in it do not count. */
            while (p[1] && p[1] != '\n'
                   && !(p[1] == '{' && (p[2] == '{' || p[2] == '%'))) {
                p++;
                if (sc) {
                    sbuf_add(code, p, 1);
                }
            }
        }
        p++;
    }
    return 0;
}

/* Splits command line 's' into words the way a shell does quoting ('...',
 * "...", backslash), without any expansion; a "{{ ... }}" stays whole
 * inside its word.  Returns -1 on an unterminated quote. */
static int
cmd_split(const char *s, json_t **words)
{
    struct sbuf w;
    bool in_word = false;
    const char *p = s;

    *words = json_array();
    sbuf_init(&w);
    for (;;) {
        if (!*p || isspace((unsigned char) *p)) {
            if (in_word) {
                json_array_append_new(*words, json_string(w.s));
                w.len = 0;
                w.s[0] = '\0';
                in_word = false;
            }
            if (!*p) {
                break;
            }
            p++;
            continue;
        }
        in_word = true;
        if (p[0] == '{' && p[1] == '{' && strstr(p + 2, "}}")) {
            const char *close = strstr(p + 2, "}}") + 2;

            sbuf_add(&w, p, (size_t) (close - p));
            p = close;
        } else if (*p == '\'' || *p == '"') {
            char q = *p++;

            while (*p && *p != q) {
                if (q == '"' && *p == '\\' && p[1]
                    && strchr("\"\\$`", p[1])) {
                    p++;
                }
                if (p[0] == '{' && p[1] == '{' && strstr(p + 2, "}}")) {
                    const char *close = strstr(p + 2, "}}") + 2;

                    sbuf_add(&w, p, (size_t) (close - p));
                    p = close;
                    continue;
                }
                sbuf_add(&w, p++, 1);
            }
            if (!*p) {
                sbuf_destroy(&w);
                json_decref(*words);
                *words = NULL;
                error_report(PROBLEM_INVALID_ARGUMENT, "unterminated %c "
                             "quote in '%s'", q, s);
                return -1;
            }
            p++;
        } else if (*p == '\\' && p[1]) {
            sbuf_add(&w, p + 1, 1);
            p += 2;
        } else {
            sbuf_add(&w, p++, 1);
        }
    }
    sbuf_destroy(&w);
    return 0;
}

/* ---- Playbooks in memory ---- */

/* The modules, in the order of the table module_specs[]. */
#define MODULES                                 \
    MODULE(PACKAGE, "package")                  \
    MODULE(COPY, "copy")                        \
    MODULE(TEMPLATE, "template")                \
    MODULE(FILE, "file")                        \
    MODULE(SERVICE, "service")                  \
    MODULE(SYSCTL, "sysctl")                    \
    MODULE(LINEINFILE, "lineinfile")            \
    MODULE(COMMAND, "command")                  \
    MODULE(SHELL, "shell")

enum module {
#define MODULE(ENUM, NAME) MODULE_##ENUM,
    MODULES
#undef MODULE
    MODULE_N
};

static const char *const module_names[] = {
#define MODULE(ENUM, NAME) NAME,
    MODULES
#undef MODULE
};

struct task {
    char *name;                 /* As written, or the module's name. */
    int line;                   /* In the playbook, for messages. */
    enum module module;
    json_t *args;               /* Module arguments, an object; owned. */
    struct expr *when;          /* NULL: always. */
    struct expr *changed_when;  /* NULL: the module decides. */
    struct expr *failed_when;   /* NULL: a non-zero exit status fails. */
    char *register_as;          /* Variable for the result, or NULL. */
    json_t *notify;             /* Handler names (array of strings). */
    size_t *notify_idx;         /* The same as indexes into handlers. */
    bool ignore_errors;
};

struct play {
    char *name;
    int line;
    json_t *vars;               /* An object; owned. */
    struct task *tasks;
    size_t n_tasks;
    struct task *handlers;
    size_t n_handlers;
};

struct playbook {
    char *path;
    char *dir;                  /* Where relative 'src' paths start. */
    struct play *plays;
    size_t n_plays;
};

static void
task_destroy(struct task *t)
{
    free(t->name);
    json_decref(t->args);
    expr_free(t->when);
    expr_free(t->changed_when);
    expr_free(t->failed_when);
    free(t->register_as);
    json_decref(t->notify);
    free(t->notify_idx);
}

static void
playbook_free(struct playbook *pb)
{
    if (!pb) {
        return;
    }
    for (size_t i = 0; i < pb->n_plays; i++) {
        struct play *p = &pb->plays[i];

        free(p->name);
        json_decref(p->vars);
        for (size_t j = 0; j < p->n_tasks; j++) {
            task_destroy(&p->tasks[j]);
        }
        for (size_t j = 0; j < p->n_handlers; j++) {
            task_destroy(&p->handlers[j]);
        }
        free(p->tasks);
        free(p->handlers);
    }
    free(pb->plays);
    free(pb->path);
    free(pb->dir);
    free(pb);
}

DEFINE_FREEP(playbook_freep, struct playbook, playbook_free)

/* ---- Running a task ---- */

/* One run of playbook_run(). */
struct run {
    const struct playbook *pb;
    const struct playbook_target *target;
    struct playbook_recap *recap;
    json_t *extra;              /* Extra vars; borrowed, may be NULL. */
    json_t *facts;              /* Owned. */
    json_t *regs;               /* Registered results; owned. */
    int index;                  /* Of the next task, from 0. */
    int total;                  /* Facts + tasks + handlers. */
};

/* One task while it runs. */
struct task_exec {
    struct run *run;
    const struct task *task;
    struct scope *scope;
    char *cmd;                  /* The last command run; owned. */
    struct sbuf out;            /* Its stdout, marker removed. */
    struct sbuf err;            /* Its stderr. */
    int rc;                     /* Its exit status; -1 before any. */
    bool changed;
    bool failed;                /* Failed although the status may be 0. */
    bool transport_failed;      /* The transport failed (error reported). */
};

static void
sbuf_clear(struct sbuf *b)
{
    b->len = 0;
    b->s[0] = '\0';
}

/* Runs the script in 's' (consumed) on the target with 'in' on its stdin.
 * Returns -1 only when the transport failed. */
static int
tx_exec(struct task_exec *tx, struct sbuf *s, const void *in, size_t in_len)
{
    const struct playbook_target *t = tx->run->target;
    int status = -1;

    free(tx->cmd);
    tx->cmd = sbuf_take(s);
    sbuf_clear(&tx->out);
    sbuf_clear(&tx->err);
    LOG_DBG("task '%s': %s", tx->task->name, tx->cmd);
    if (t->exec(t->exec_aux, tx->cmd, in, in_len, &tx->out, &tx->err,
                &status) < 0) {
        tx->transport_failed = true;
        return -1;
    }
    tx->rc = status;
    return 0;
}

/* Removes the last line of 'out' if it is 'marker'; true if it was. */
static bool
out_take_last(struct sbuf *out, const char *marker)
{
    size_t end = out->len;
    size_t start;

    if (end && out->s[end - 1] == '\n') {
        end--;
    }
    start = end;
    while (start > 0 && out->s[start - 1] != '\n') {
        start--;
    }
    if (end - start != strlen(marker) || memcmp(out->s + start, marker,
                                                end - start)) {
        return false;
    }
    out->len = start;
    out->s[start] = '\0';
    return true;
}

/* Removes the first line of 'out' if it is 'marker'; true if it was. */
static bool
out_take_first(struct sbuf *out, const char *marker)
{
    size_t n = strlen(marker);

    if (out->len <= n || memcmp(out->s, marker, n) || out->s[n] != '\n') {
        return false;
    }
    memmove(out->s, out->s + n + 1, out->len - n);
    out->len -= n + 1;
    return true;
}

/* Reads the marker a module script printed last. */
static void
tx_state_result(struct task_exec *tx)
{
    if (out_take_last(&tx->out, "KVMSTACK-CHANGED")) {
        tx->changed = true;
    } else if (!out_take_last(&tx->out, "KVMSTACK-OK") && tx->rc == 0) {
        tx->failed = true;
        sbuf_addstr(&tx->err, "kvmstack: the command printed no result "
                    "marker\n");
    }
}

/* Runs module script 's' (consumed) and reads its marker. */
static int
tx_run_state(struct task_exec *tx, struct sbuf *s, const void *in,
             size_t in_len)
{
    if (tx_exec(tx, s, in, in_len) < 0) {
        return -1;
    }
    tx_state_result(tx);
    return 0;
}

/* ---- Module arguments (rendered when the task runs) ---- */

static json_t *
arg_get(const struct task_exec *tx, const char *key)
{
    json_t *v = json_object_get(tx->task->args, key);

    return json_is_null(v) ? NULL : v;
}

/* Renders string argument 'key' into '*out' (owned; NULL if absent). */
static int
arg_str(struct task_exec *tx, const char *key, char **out)
{
    json_t *v = arg_get(tx, key);

    *out = NULL;
    if (!v) {
        return 0;
    }
    if (json_is_object(v) || json_is_array(v)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must be a "
                     "string", key);
        return -1;
    }
    if (json_is_string(v)) {
        return tmpl_render(json_string_value(v), tx->scope, out);
    }
    *out = value_to_string(v);
    return 0;
}

/* Renders boolean argument 'key' into '*out' ('dflt' if absent). */
static int
arg_bool(struct task_exec *tx, const char *key, bool dflt, bool *out)
{
    json_t *v = arg_get(tx, key);
    AUTOFREE char *s = NULL;

    *out = dflt;
    if (!v) {
        return 0;
    }
    if (json_is_boolean(v) || json_is_number(v)) {
        *out = value_truthy(v);
        return 0;
    }
    if (arg_str(tx, key, &s) < 0) {
        return -1;
    }
    if (!word_bool(s, out)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must be yes "
                     "or no, not '%s'", key, s);
        return -1;
    }
    return 0;
}

/* Renders argument 'key' from 'choices' into '*out' ('dflt' if absent;
 * owned). */
static int
arg_choice(struct task_exec *tx, const char *key,
           const char *const *choices, const char *dflt, char **out)
{
    if (arg_str(tx, key, out) < 0) {
        return -1;
    }
    if (!*out) {
        *out = dflt ? xstrdup(dflt) : NULL;
        return 0;
    }
    if (!str_in(*out, choices)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must be one "
                     "of the module's choices, not '%s'", key, *out);
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Renders list argument 'key' (a list, or a string of comma-separated
 * items) into the array '*out' of strings (new reference; NULL if
 * absent). */
static int
arg_list(struct task_exec *tx, const char *key, json_t **out)
{
    json_t *v = arg_get(tx, key);
    json_t *r = NULL;
    json_t *item;
    size_t i;

    *out = NULL;
    if (!v) {
        return 0;
    }
    if (value_render(v, tx->scope, &r) < 0) {
        return -1;
    }
    *out = json_array();
    if (json_is_string(r)) {
        AUTOFREE char *copy = xstrdup(json_string_value(r));
        char *save = NULL;

        for (char *w = strtok_r(copy, ", \t\n", &save); w;
             w = strtok_r(NULL, ", \t\n", &save)) {
            json_array_append_new(*out, json_string(w));
        }
    } else if (json_is_array(r)) {
        json_array_foreach(r, i, item) {
            AUTOFREE char *text = value_to_string(item);

            if (json_is_object(item) || json_is_array(item)) {
                error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must "
                             "be a list of strings", key);
                json_decref(r);
                json_decref(*out);
                *out = NULL;
                return -1;
            }
            json_array_append_new(*out, json_string(text));
        }
    } else {
        AUTOFREE char *text = value_to_string(r);

        json_array_append_new(*out, json_string(text));
    }
    json_decref(r);
    return 0;
}

static int
check_abs_path(const char *key, const char *path)
{
    if (path[0] != '/') {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must be an "
                     "absolute path, not '%s'", key, path);
        return -1;
    }
    return 0;
}

/* True if 'path' names "/" ("/", "//", "/./..", ...). */
static bool
path_is_root(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");

        if (n && !(n == 1 && p[0] == '.') && !(n == 2 && !strncmp(p, "..",
                                                                  2))) {
            return false;
        }
        p += n;
        p += *p == '/';
    }
    return true;
}

/* Checks a user, group or service name: no separator, no option. */
static int
check_name(const char *key, const char *s)
{
    if (!*s || s[0] == '-' || strpbrk(s, ":/ \t\n")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' is not a "
                     "valid name: '%s'", key, s);
        return -1;
    }
    return 0;
}

/* Normalizes an octal mode ("0755", "755", "0o755") to what `stat -c %a`
 * prints ("755").  Caller frees. */
static int
mode_normalize(const char *in, char **out)
{
    const char *p = strncmp(in, "0o", 2) ? in : in + 2;
    size_t n = strspn(p, "01234567");
    unsigned long mode;

    *out = NULL;
    if (!n || p[n] || n > 5 || (mode = strtoul(p, NULL, 8)) > 07777) {
        error_report(PROBLEM_INVALID_ARGUMENT, "mode '%s' must be octal, "
                     "such as '0755'", in);
        return -1;
    }
    *out = xasprintf("%lo", mode);
    return 0;
}

/* Renders mode, owner and group into shell variables m, o and g of 's'. */
static int
arg_attrs(struct task_exec *tx, struct sbuf *s)
{
    AUTOFREE char *mode = NULL;
    AUTOFREE char *norm = NULL;
    AUTOFREE char *owner = NULL;
    AUTOFREE char *group = NULL;

    if (arg_str(tx, "mode", &mode) < 0 || arg_str(tx, "owner", &owner) < 0
        || arg_str(tx, "group", &group) < 0
        || (mode && mode_normalize(mode, &norm) < 0)
        || (owner && check_name("owner", owner) < 0)
        || (group && check_name("group", group) < 0)) {
        return -1;
    }
    sh_assign(s, "m", norm);
    sh_assign(s, "o", owner);
    sh_assign(s, "g", group);
    return 0;
}

/* ---- Module scripts: fixed text working on quoted variables ---- */

/* Sets the mode, owner and group of "$p" from "$m", "$o", "$g" (each may
 * be empty); c=1 if anything changed. */
static const char attrs_sh[] =
    "if [ -n \"$m\" ] && [ \"$(stat -c %a -- \"$p\")\" != \"$m\" ]; then\n"
    "    chmod -- \"$m\" \"$p\" || exit 1; c=1\n"
    "fi\n"
    "if [ -n \"$o\" ]; then\n"
    "    x=$(stat -c %U:%u -- \"$p\") || exit 1\n"
    "    case \":$x:\" in\n"
    "    *\":$o:\"*) ;;\n"
    "    *) chown -- \"$o\" \"$p\" || exit 1; c=1;;\n"
    "    esac\n"
    "fi\n"
    "if [ -n \"$g\" ]; then\n"
    "    x=$(stat -c %G:%g -- \"$p\") || exit 1\n"
    "    case \":$x:\" in\n"
    "    *\":$g:\"*) ;;\n"
    "    *) chgrp -- \"$g\" \"$p\" || exit 1; c=1;;\n"
    "    esac\n"
    "fi\n";

static const char marker_sh[] =
    "if [ \"$c\" = 1 ]; then echo KVMSTACK-CHANGED; "
    "else echo KVMSTACK-OK; fi\n";

/* preserve OLD NEW: gives NEW the mode and owner of OLD, or 0644. */
static const char preserve_sh[] =
    "preserve() {\n"
    "    if [ -e \"$1\" ]; then\n"
    "        chmod \"$(stat -c %a -- \"$1\")\" \"$2\" &&\n"
    "        chown \"$(stat -c %u:%g -- \"$1\")\" \"$2\"\n"
    "    else\n"
    "        chmod 644 \"$2\"\n"
    "    fi\n"
    "}\n";

static const char file_sh[] =
    "c=0\n"
    "case $s in\n"
    "directory)\n"
    "    if [ ! -d \"$p\" ]; then\n"
    "        mkdir -p -- \"$p\" >&2 || exit 1; c=1\n"
    "    fi;;\n"
    "touch)\n"
    "    if [ ! -e \"$p\" ]; then : > \"$p\" || exit 1; c=1; fi;;\n"
    "file)\n"
    "    if [ ! -e \"$p\" ]; then\n"
    "        echo \"file: '$p' does not exist\" >&2; exit 1\n"
    "    fi;;\n"
    "absent)\n"
    "    if [ -e \"$p\" ] || [ -L \"$p\" ]; then\n"
    "        rm -rf -- \"$p\" || exit 1; c=1\n"
    "    fi;;\n"
    "esac\n";

/* Writes stdin to "$d" unless its sha256 is already "$h"; with have=0 and
 * a different file, only asks for the content. */
static const char copy_sh[] =
    "c=0\n"
    "if [ -d \"$d\" ]; then\n"
    "    echo \"copy: '$d' is a directory\" >&2; exit 1\n"
    "fi\n"
    "x=\n"
    "if [ -e \"$d\" ]; then\n"
    "    x=$(sha256sum < \"$d\") || exit 1; x=${x%% *}\n"
    "fi\n"
    "if [ \"$x\" != \"$h\" ]; then\n"
    "    if [ \"$have\" != 1 ]; then echo KVMSTACK-NEED-CONTENT; exit 0; fi\n"
    "    t=$(mktemp \"$d.kvmstack.XXXXXX\") || exit 1\n"
    "    if cat > \"$t\" && preserve \"$d\" \"$t\" && mv -f -- \"$t\" \"$d\"\n"
    "    then c=1; else rm -f -- \"$t\"; exit 1; fi\n"
    "elif [ \"$have\" = 1 ]; then\n"
    "    cat > /dev/null\n"
    "fi\n"
    "p=$d\n";

/* Makes line "$l" present in, or lines absent from, file "$f": with
 * regexp "$r" (POSIX ERE) the last matching line is replaced (present) or
 * every matching line removed (absent); without, the exact line.  c=1 if
 * the file changed; "$cr" = 1 creates a missing file. */
static const char lineinfile_sh[] =
    "if [ -e \"$f\" ] || [ \"$st\" = present ]; then\n"
    "    if [ ! -e \"$f\" ] && [ \"$cr\" != 1 ]; then\n"
    "        echo \"lineinfile: '$f' does not exist\" >&2; exit 1\n"
    "    fi\n"
    "    t=$(mktemp \"$f.kvmstack.XXXXXX\") || exit 1\n"
    "    if [ -e \"$f\" ]; then x=$f; else x=/dev/null; fi\n"
    "    R=$r L=$l S=$st T=$t awk '\n"
    "    BEGIN { r = ENVIRON[\"R\"]; l = ENVIRON[\"L\"];\n"
    "            s = ENVIRON[\"S\"]; t = ENVIRON[\"T\"]; m = 0; eq = 0 }\n"
    "    {\n"
    "        a[NR] = $0\n"
    "        if ((r != \"\" && $0 ~ r) || (r == \"\" && $0 == l)) {\n"
    "            m = NR; hit[NR] = 1\n"
    "        }\n"
    "        if ($0 == l) { eq = 1 }\n"
    "    }\n"
    "    END {\n"
    "        n = NR; ch = 0\n"
    "        if (s == \"present\") {\n"
    "            if (m) { if (a[m] != l) { a[m] = l; ch = 1 } }\n"
    "            else if (!eq) { a[++n] = l; ch = 1 }\n"
    "        } else {\n"
    "            for (i = 1; i <= n; i++) {\n"
    "                if (i in hit) { delete a[i]; ch = 1 }\n"
    "            }\n"
    "        }\n"
    "        if (!ch) { exit 0 }\n"
    "        for (i = 1; i <= n; i++) { if (i in a) { print a[i] > t } }\n"
    "        exit 10\n"
    "    }' \"$x\"\n"
    "    case $? in\n"
    "    0) rm -f -- \"$t\";;\n"
    "    10) if preserve \"$f\" \"$t\" && mv -f -- \"$t\" \"$f\"; then c=1\n"
    "        else rm -f -- \"$t\"; exit 1; fi;;\n"
    "    *) rm -f -- \"$t\"; exit 1;;\n"
    "    esac\n"
    "fi\n";

/* Sets /proc/sys value "$pth" to "$v" (compared word by word). */
static const char sysctl_sh[] =
    "c=0\n"
    "if [ \"$st\" = present ] && [ \"$rl\" = 1 ]; then\n"
    "    if [ ! -e \"$pth\" ]; then\n"
    "        echo \"sysctl: unknown key '$k' ($pth does not exist)\" >&2\n"
    "        exit 1\n"
    "    fi\n"
    "    x=$(cat -- \"$pth\") || exit 1\n"
    "    set -f; set -- $x; x=$*; set -- $v; y=$*; set +f\n"
    "    if [ \"$x\" != \"$y\" ]; then\n"
    "        printf '%s\\n' \"$v\" > \"$pth\" || exit 1; c=1\n"
    "    fi\n"
    "fi\n";

/* Package managers: the names are the positional parameters. */
/* One dpkg-query for all the names (a version after '=' or an
 * architecture after ':' is not part of the name it knows). */
static const char package_apt_sh[] =
    "set -f\n"
    "n=\n"
    "for x do x=${x%%=*}; n=\"$n ${x%%:*}\"; done\n"
    "nl='\n"
    "'\n"
    "y=$nl$(dpkg-query -W -f='${Package} ${Status}\\n' $n 2>/dev/null)$nl\n"
    "m=\n"
    "for x do\n"
    "    x1=${x%%=*}; x1=${x1%%:*}\n"
    "    case $y in\n"
    "    *\"$nl$x1 install ok installed$nl\"*)\n"
    "        if [ \"$st\" = absent ]; then m=\"$m $x\"; fi;;\n"
    "    *) if [ \"$st\" = present ]; then m=\"$m $x\"; fi;;\n"
    "    esac\n"
    "done\n"
    "if [ -z \"$m\" ]; then echo KVMSTACK-OK; exit 0; fi\n"
    "DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\n"
    "if [ \"$st\" = present ]; then\n"
    "    if [ \"$uc\" = 1 ]; then apt-get update -q >&2 || exit 1; fi\n"
    "    apt-get install -y -q --no-install-recommends $m >&2 || exit 1\n"
    "else\n"
    "    apt-get remove -y -q $m >&2 || exit 1\n"
    "fi\n"
    "echo KVMSTACK-CHANGED\n";

static const char package_rpm_sh[] =
    "m=\n"
    "for x do\n"
    "    if rpm -q --quiet --whatprovides \"$x\" >/dev/null 2>&1; then\n"
    "        if [ \"$st\" = absent ]; then m=\"$m $x\"; fi\n"
    "    elif [ \"$st\" = present ]; then\n"
    "        m=\"$m $x\"\n"
    "    fi\n"
    "done\n"
    "if [ -z \"$m\" ]; then echo KVMSTACK-OK; exit 0; fi\n"
    "set -f\n"
    "if [ \"$st\" = present ]; then\n"
    "    if [ \"$uc\" = 1 ]; then \"$pm\" makecache -q >&2 || exit 1; fi\n"
    "    \"$pm\" install -y -q $m >&2 || exit 1\n"
    "else\n"
    "    \"$pm\" remove -y -q $m >&2 || exit 1\n"
    "fi\n"
    "echo KVMSTACK-CHANGED\n";

/* Services: systemd when it runs, else plain init: "$pf" (pidfile) or
 * "$pt" (pgrep -f pattern) or the process name "$n" tells whether it runs,
 * start_plain (generated) starts it.  reloaded starts a stopped service,
 * as Ansible does (systemd refuses to reload an inactive unit). */
static const char service_sh[] =
    "c=0\n"
    "if [ -d /run/systemd/system ]; then\n"
    "    if [ \"$en\" = yes ] &&\n"
    "       ! systemctl is-enabled --quiet -- \"$n\" 2>/dev/null; then\n"
    "        systemctl enable -- \"$n\" >&2 || exit 1; c=1\n"
    "    fi\n"
    "    if [ \"$en\" = no ] &&\n"
    "       systemctl is-enabled --quiet -- \"$n\" 2>/dev/null; then\n"
    "        systemctl disable -- \"$n\" >&2 || exit 1; c=1\n"
    "    fi\n"
    "    case $st in\n"
    "    started)\n"
    "        if ! systemctl is-active --quiet -- \"$n\"; then\n"
    "            systemctl start -- \"$n\" >&2 || exit 1; c=1\n"
    "        fi;;\n"
    "    stopped)\n"
    "        if systemctl is-active --quiet -- \"$n\"; then\n"
    "            systemctl stop -- \"$n\" >&2 || exit 1; c=1\n"
    "        fi;;\n"
    "    restarted) systemctl restart -- \"$n\" >&2 || exit 1; c=1;;\n"
    "    reloaded)\n"
    "        if systemctl is-active --quiet -- \"$n\"; then\n"
    "            systemctl reload -- \"$n\" >&2 || exit 1\n"
    "        else\n"
    "            systemctl start -- \"$n\" >&2 || exit 1\n"
    "        fi; c=1;;\n"
    "    esac\n"
    "else\n"
    "    running() {\n"
    "        if [ -n \"$pf\" ]; then\n"
    "            x=$(cat -- \"$pf\" 2>/dev/null) || return 1\n"
    "            case $x in ''|*[!0-9]*) return 1;; esac\n"
    "            kill -0 \"$x\" 2>/dev/null || return 1\n"
    "            x=$(cat \"/proc/$x/stat\" 2>/dev/null) || return 0\n"
    "            case ${x##*[)] } in Z*) return 1;; esac\n"
    "        elif [ -n \"$pt\" ]; then\n"
    "            pgrep -f -- \"$pt\" >/dev/null\n"
    "        else\n"
    "            pgrep -x -- \"$n\" >/dev/null\n"
    "        fi\n"
    "    }\n"
    "    stop_plain() {\n"
    "        if [ -n \"$pf\" ]; then\n"
    "            x=$(cat -- \"$pf\" 2>/dev/null)\n"
    "            case $x in\n"
    "            ''|*[!0-9]*)\n"
    "                echo \"service '$n': bad pidfile '$pf'\" >&2\n"
    "                return 1;;\n"
    "            esac\n"
    "            kill \"$x\" || return 1\n"
    "        elif [ -n \"$pt\" ]; then\n"
    "            pkill -f -- \"$pt\" || return 1\n"
    "        else\n"
    "            pkill -x -- \"$n\" || return 1\n"
    "        fi\n"
    "        i=0\n"
    "        while running; do\n"
    "            i=$((i + 1))\n"
    "            if [ \"$i\" -gt 100 ]; then\n"
    "                echo \"service '$n': runs 10 s after SIGTERM\" >&2\n"
    "                return 1\n"
    "            fi\n"
    "            sleep 0.1\n"
    "        done\n"
    "    }\n"
    "    wait_running() {\n"
    "        i=0\n"
    "        while ! running; do\n"
    "            i=$((i + 1))\n"
    "            if [ \"$i\" -gt 50 ]; then\n"
    "                echo \"service '$n': started, but not running\" >&2\n"
    "                return 1\n"
    "            fi\n"
    "            sleep 0.1\n"
    "        done\n"
    "    }\n"
    "    case $st in\n"
    "    started)\n"
    "        if ! running; then start_plain || exit 1; c=1; fi;;\n"
    "    stopped)\n"
    "        if running; then stop_plain || exit 1; c=1; fi;;\n"
    "    restarted|reloaded)\n"
    "        if running; then stop_plain || exit 1; fi\n"
    "        start_plain || exit 1; c=1;;\n"
    "    esac\n"
    "fi\n";

/* ---- Modules ---- */

static const char *const package_states[] = {
    "present", "installed", "absent", "removed", NULL,
};
static const char *const file_states[] = {
    "file", "directory", "touch", "absent", NULL,
};
static const char *const service_states[] = {
    "started", "stopped", "restarted", "reloaded", NULL,
};
static const char *const present_absent[] = { "present", "absent", NULL };

static int
run_package(struct task_exec *tx)
{
    const char *pm = json_string_value(json_object_get(tx->scope->facts,
                                                       "pkg_mgr"));
    AUTOFREE char *state = NULL;
    json_t *names = NULL;
    json_t *name;
    struct sbuf s;
    bool update;
    size_t i;

    if (arg_list(tx, "name", &names) < 0
        || arg_choice(tx, "state", package_states, "present", &state) < 0
        || arg_bool(tx, "update_cache", false, &update) < 0) {
        json_decref(names);
        return -1;
    }
    sbuf_init(&s);
    sbuf_addstr(&s, "set --");
    json_array_foreach(names, i, name) {
        const char *n = json_string_value(name);

        if (!isalnum((unsigned char) n[0])
            || strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_.+:~=-") != strlen(n)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'%s' is not a package "
                         "name", n);
            json_decref(names);
            sbuf_destroy(&s);
            return -1;
        }
        sbuf_addstr(&s, " ");
        sbuf_add_quoted(&s, n);
    }
    json_decref(names);
    sbuf_addstr(&s, "\n");
    sh_assign(&s, "st", (!strcmp(state, "present")
                         || !strcmp(state, "installed")) ? "present"
                                                         : "absent");
    sh_assign(&s, "uc", update ? "1" : "0");
    if (pm && !strcmp(pm, "apt")) {
        sbuf_addstr(&s, package_apt_sh);
    } else if (pm && (!strcmp(pm, "dnf") || !strcmp(pm, "yum"))) {
        sh_assign(&s, "pm", pm);
        sbuf_addstr(&s, package_rpm_sh);
    } else {
        error_report(PROBLEM_NOT_SUPPORTED, "no supported package manager "
                     "(apt, dnf, yum) on the target");
        sbuf_destroy(&s);
        return -1;
    }
    return tx_run_state(tx, &s, NULL, 0);
}

/* Copies 'len' bytes of 'data' to 'dest' with the task's mode, owner and
 * group: one command when the target's file is already right or 'data' is
 * small, else a check and then the transfer. */
static int
copy_content(struct task_exec *tx, const char *dest, const char *data,
             size_t len)
{
    char hash[65];
    struct sbuf s;

    if (check_abs_path("dest", dest) < 0) {
        return -1;
    }
    sha256_hex(data, len, hash);
    for (int pass = 0; pass < 2; pass++) {
        bool have = len <= COPY_INLINE_MAX || pass > 0;

        sbuf_init(&s);
        sh_assign(&s, "d", dest);
        sh_assign(&s, "h", hash);
        sh_assign(&s, "have", have ? "1" : "0");
        if (arg_attrs(tx, &s) < 0) {
            sbuf_destroy(&s);
            return -1;
        }
        sbuf_addstr(&s, preserve_sh);
        sbuf_addstr(&s, copy_sh);
        sbuf_addstr(&s, attrs_sh);
        sbuf_addstr(&s, marker_sh);
        if (tx_exec(tx, &s, have ? data : NULL, have ? len : 0) < 0) {
            return -1;
        }
        if (have || tx->rc != 0
            || !out_take_last(&tx->out, "KVMSTACK-NEED-CONTENT")) {
            break;
        }
    }
    tx_state_result(tx);
    return 0;
}

/* Reads local file 'path' (relative to the playbook's directory) whole
 * into '*data' (NUL-terminated; caller frees). */
static int
read_local(struct task_exec *tx, const char *path, char **data, size_t *len)
{
    AUTOFREE char *full = path[0] == '/' ? xstrdup(path)
                                          : xasprintf("%s/%s",
                                                      tx->run->pb->dir, path);
    FILE *f = fopen(full, "rb");
    struct sbuf b;
    char buf[65536];
    size_t n;

    *data = NULL;
    if (!f) {
        error_report(PROBLEM_NOT_FOUND, "cannot read src '%s': %s", full,
                     strerror(errno));
        return -1;
    }
    sbuf_init(&b);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (b.len + n > COPY_SRC_MAX) {
            error_report(PROBLEM_TOO_LARGE, "src '%s' is bigger than %d "
                         "bytes", full, COPY_SRC_MAX);
            fclose(f);
            sbuf_destroy(&b);
            return -1;
        }
        sbuf_add(&b, buf, n);
    }
    if (ferror(f)) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read src '%s': %s",
                     full, strerror(errno));
        fclose(f);
        sbuf_destroy(&b);
        return -1;
    }
    fclose(f);
    *len = b.len;
    *data = sbuf_take(&b);
    return 0;
}

static int
run_copy(struct task_exec *tx)
{
    AUTOFREE char *dest = NULL;
    AUTOFREE char *src = NULL;
    AUTOFREE char *content = NULL;
    AUTOFREE char *data = NULL;
    size_t len = 0;

    if (arg_str(tx, "dest", &dest) < 0 || arg_str(tx, "src", &src) < 0
        || arg_str(tx, "content", &content) < 0) {
        return -1;
    }
    if (src) {
        if (read_local(tx, src, &data, &len) < 0) {
            return -1;
        }
        return copy_content(tx, dest, data, len);
    }
    if (!content) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument 'content' or "
                     "'src' is needed");
        return -1;
    }
    return copy_content(tx, dest, content, strlen(content));
}

static int
run_template(struct task_exec *tx)
{
    AUTOFREE char *dest = NULL;
    AUTOFREE char *src = NULL;
    AUTOFREE char *data = NULL;
    AUTOFREE char *text = NULL;
    size_t len;

    if (arg_str(tx, "dest", &dest) < 0 || arg_str(tx, "src", &src) < 0
        || read_local(tx, src, &data, &len) < 0) {
        return -1;
    }
    if (strlen(data) != len) {
        error_report(PROBLEM_INVALID_ARGUMENT, "template '%s' is not text",
                     src);
        return -1;
    }
    if (strstr(data, "{#")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "template '%s': Jinja "
                     "comments ('{# ... #}') are not supported", src);
        return -1;
    }
    if (tmpl_render(data, tx->scope, &text) < 0) {
        error_prefix("template '%s': ", src);
        return -1;
    }
    return copy_content(tx, dest, text, strlen(text));
}

static int
run_file(struct task_exec *tx)
{
    AUTOFREE char *path = NULL;
    AUTOFREE char *state = NULL;
    struct sbuf s;

    if (arg_str(tx, "path", &path) < 0
        || arg_choice(tx, "state", file_states, "file", &state) < 0
        || check_abs_path("path", path) < 0) {
        return -1;
    }
    if (!strcmp(state, "absent") && path_is_root(path)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "refusing to remove '%s'",
                     path);
        return -1;
    }
    sbuf_init(&s);
    sh_assign(&s, "p", path);
    sh_assign(&s, "s", state);
    if (arg_attrs(tx, &s) < 0) {
        sbuf_destroy(&s);
        return -1;
    }
    sbuf_addstr(&s, file_sh);
    if (strcmp(state, "absent")) {
        sbuf_addstr(&s, attrs_sh);
    }
    sbuf_addstr(&s, marker_sh);
    return tx_run_state(tx, &s, NULL, 0);
}

static int
run_lineinfile(struct task_exec *tx)
{
    AUTOFREE char *path = NULL;
    AUTOFREE char *line = NULL;
    AUTOFREE char *regexp = NULL;
    AUTOFREE char *state = NULL;
    struct sbuf s;
    bool create;

    if (arg_str(tx, "path", &path) < 0 || arg_str(tx, "line", &line) < 0
        || arg_str(tx, "regexp", &regexp) < 0
        || arg_choice(tx, "state", present_absent, "present", &state) < 0
        || arg_bool(tx, "create", false, &create) < 0
        || check_abs_path("path", path) < 0) {
        return -1;
    }
    if (!line && (!strcmp(state, "present") || !regexp)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument 'line' is needed "
                     "here");
        return -1;
    }
    if (line && strchr(line, '\n')) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument 'line' must be one "
                     "line");
        return -1;
    }
    sbuf_init(&s);
    sh_assign(&s, "f", path);
    sh_assign(&s, "p", path);
    sh_assign(&s, "l", line);
    sh_assign(&s, "r", regexp);
    sh_assign(&s, "st", state);
    sh_assign(&s, "cr", create ? "1" : "0");
    if (arg_attrs(tx, &s) < 0) {
        sbuf_destroy(&s);
        return -1;
    }
    sbuf_addstr(&s, "c=0\n");
    sbuf_addstr(&s, preserve_sh);
    sbuf_addstr(&s, lineinfile_sh);
    sbuf_addstr(&s, "if [ -e \"$p\" ]; then\n");
    sbuf_addstr(&s, attrs_sh);
    sbuf_addstr(&s, "fi\n");
    sbuf_addstr(&s, marker_sh);
    return tx_run_state(tx, &s, NULL, 0);
}

/* Checks a sysctl key and finds its /proc/sys path (caller frees). */
static int
sysctl_path(const char *key, char **path)
{
    char *p;

    *path = NULL;
    if (!*key || key[0] == '.' || key[0] == '/' || strstr(key, "..")
        || strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_.:/@-") != strlen(key)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "'%s' is not a sysctl key",
                     key);
        return -1;
    }
    *path = xasprintf("/proc/sys/%s", key);
    if (!strchr(key, '/')) {
        for (p = *path + strlen("/proc/sys/"); *p; p++) {
            *p = *p == '.' ? '/' : *p;
        }
    }
    return 0;
}

static int
run_sysctl(struct task_exec *tx)
{
    AUTOFREE char *key = NULL;
    AUTOFREE char *value = NULL;
    AUTOFREE char *state = NULL;
    AUTOFREE char *file = NULL;
    AUTOFREE char *path = NULL;
    AUTOFREE char *line = NULL;
    struct sbuf regexp;
    struct sbuf s;
    bool reload;

    if (arg_str(tx, "name", &key) < 0 || arg_str(tx, "value", &value) < 0
        || arg_choice(tx, "state", present_absent, "present", &state) < 0
        || arg_bool(tx, "reload", true, &reload) < 0
        || arg_str(tx, "sysctl_file", &file) < 0
        || sysctl_path(key, &path) < 0) {
        return -1;
    }
    if (!strcmp(state, "present") && (!value || strchr(value, '\n'))) {
        error_report(PROBLEM_INVALID_ARGUMENT, "argument 'value' is needed, "
                     "on one line");
        return -1;
    }
    if (!json_object_get(tx->task->args, "sysctl_file")) {
        file = xstrdup("/etc/sysctl.conf");
    }
    if (file && *file && check_abs_path("sysctl_file", file) < 0) {
        return -1;
    }
    sbuf_init(&s);
    sh_assign(&s, "k", key);
    sh_assign(&s, "pth", path);
    sh_assign(&s, "v", value);
    sh_assign(&s, "st", state);
    sh_assign(&s, "rl", reload ? "1" : "0");
    sbuf_addstr(&s, sysctl_sh);
    if (file && *file) {
        /* The key as a regular expression: every other character in []. */
        sbuf_init(&regexp);
        sbuf_addstr(&regexp, "^[[:space:]]*");
        for (const char *p = key; *p; p++) {
            sbuf_addf(&regexp, isalnum((unsigned char) *p) || *p == '_'
                      ? "%c" : "[%c]", *p);
        }
        sbuf_addstr(&regexp, "[[:space:]]*=");
        line = xasprintf("%s=%s", key, value ? value : "");
        sh_assign(&s, "f", file);
        sh_assign(&s, "l", line);
        sh_assign(&s, "r", regexp.s);
        sh_assign(&s, "cr", "1");
        sbuf_destroy(&regexp);
        sbuf_addstr(&s, preserve_sh);
        sbuf_addstr(&s, lineinfile_sh);
    }
    sbuf_addstr(&s, marker_sh);
    return tx_run_state(tx, &s, NULL, 0);
}

/* Appends the words of command line 'line' (or of the list 'argv'), each
 * rendered and quoted, to 's'. */
static int
add_words(struct task_exec *tx, const char *line, json_t *argv,
          struct sbuf *s)
{
    json_t *words = NULL;
    json_t *word;
    size_t i;

    if (argv) {
        words = json_incref(argv);
    } else if (cmd_split(line, &words) < 0) {
        return -1;
    }
    if (!json_array_size(words)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "the command is empty");
        json_decref(words);
        return -1;
    }
    json_array_foreach(words, i, word) {
        char *text = NULL;

        if (json_is_string(word)) {
            if (tmpl_render(json_string_value(word), tx->scope, &text) < 0) {
                json_decref(words);
                return -1;
            }
        } else {
            text = value_to_string(word);
        }
        sbuf_addstr(s, i ? " " : "");
        sbuf_add_quoted(s, text);
        free(text);
    }
    json_decref(words);
    return 0;
}

static int
run_service(struct task_exec *tx)
{
    AUTOFREE char *name = NULL;
    AUTOFREE char *state = NULL;
    AUTOFREE char *daemon = NULL;
    AUTOFREE char *pidfile = NULL;
    AUTOFREE char *pattern = NULL;
    json_t *enabled = arg_get(tx, "enabled");
    struct sbuf s;
    bool en = false;

    if (arg_str(tx, "name", &name) < 0
        || arg_choice(tx, "state", service_states, NULL, &state) < 0
        || (enabled && arg_bool(tx, "enabled", false, &en) < 0)
        || arg_str(tx, "daemon", &daemon) < 0
        || arg_str(tx, "pidfile", &pidfile) < 0
        || arg_str(tx, "pattern", &pattern) < 0
        || check_name("name", name) < 0
        || (pidfile && check_abs_path("pidfile", pidfile) < 0)) {
        return -1;
    }
    sbuf_init(&s);
    sh_assign(&s, "n", name);
    sh_assign(&s, "st", state);
    sh_assign(&s, "en", enabled ? (en ? "yes" : "no") : "");
    sh_assign(&s, "pf", pidfile);
    /* The pattern is spelled in octal escapes so that the script's own
     * command line, which pgrep -f also sees, does not match it. */
    sbuf_addstr(&s, "pt=");
    if (pattern && *pattern) {
        sbuf_addstr(&s, "$(printf '");
        for (const char *p = pattern; *p; p++) {
            sbuf_addf(&s, "\\%03o", (unsigned char) *p);
        }
        sbuf_addstr(&s, "')");
    }
    sbuf_addstr(&s, "\nstart_plain() {\n");
    if (daemon) {
        sbuf_addstr(&s, "    l=$(mktemp) || return 1\n    if ");
        if (add_words(tx, daemon, NULL, &s) < 0) {
            sbuf_destroy(&s);
            return -1;
        }
    } else {
        sbuf_addstr(&s,
                    "    if [ ! -x \"/etc/init.d/$n\" ]; then\n"
                    "        echo \"service '$n': no systemd, no "
                    "/etc/init.d/$n and no 'daemon' to start it\" >&2\n"
                    "        return 1\n"
                    "    fi\n"
                    "    l=$(mktemp) || return 1\n"
                    "    if \"/etc/init.d/$n\" start");
    }
    sbuf_addstr(&s, " </dev/null >\"$l\" 2>&1; then\n"
                "        rm -f -- \"$l\"\n"
                "    else\n"
                "        cat -- \"$l\" >&2; rm -f -- \"$l\"; return 1\n"
                "    fi\n"
                "    wait_running\n"
                "}\n");
    sbuf_addstr(&s, service_sh);
    sbuf_addstr(&s, marker_sh);
    return tx_run_state(tx, &s, NULL, 0);
}

/* command and shell: the user's command runs after KVMSTACK-RUN, unless
 * 'creates' exists or 'removes' does not (then KVMSTACK-OK). */
static int
run_command(struct task_exec *tx)
{
    bool shell = tx->task->module == MODULE_SHELL;
    const char *cmd = json_string_value(arg_get(tx, "cmd"));
    AUTOFREE char *creates = NULL;
    AUTOFREE char *removes = NULL;
    AUTOFREE char *chdir = NULL;
    AUTOFREE char *exe = NULL;
    struct sbuf assign;
    struct sbuf code;
    struct sbuf s;

    if (arg_str(tx, "creates", &creates) < 0
        || arg_str(tx, "removes", &removes) < 0
        || arg_str(tx, "chdir", &chdir) < 0
        || (shell && arg_str(tx, "executable", &exe) < 0)) {
        return -1;
    }
    sbuf_init(&assign);
    sbuf_init(&code);
    if (shell ? shell_render(cmd, tx->scope, exe != NULL, &assign,
                             &code) < 0
              : add_words(tx, cmd, arg_get(tx, "argv"), &code) < 0) {
        sbuf_destroy(&assign);
        sbuf_destroy(&code);
        return -1;
    }
    sbuf_init(&s);
    if (chdir) {
        sh_assign(&s, "_kd", chdir);
        sbuf_addstr(&s, "cd -- \"$_kd\" || exit 1\n");
    }
    if (creates) {
        sh_assign(&s, "_kc", creates);
        sbuf_addstr(&s, "if [ -e \"$_kc\" ]; then echo KVMSTACK-OK; exit 0; "
                    "fi\n");
    }
    if (removes) {
        sh_assign(&s, "_kr", removes);
        sbuf_addstr(&s, "if [ ! -e \"$_kr\" ]; then echo KVMSTACK-OK; exit "
                    "0; fi\n");
    }
    sbuf_addstr(&s, "echo KVMSTACK-RUN\n");
    sbuf_addstr(&s, assign.s);
    if (!shell) {
        sbuf_addf(&s, "exec %s\n", code.s);
    } else if (exe) {
        sh_assign(&s, "_ke", exe);
        sh_assign(&s, "_ks", code.s);
        sbuf_addstr(&s, "exec \"$_ke\" -c \"$_ks\"\n");
    } else {
        sbuf_addstr(&s, code.s);
        sbuf_addstr(&s, "\n");
    }
    sbuf_destroy(&assign);
    sbuf_destroy(&code);
    if (tx_exec(tx, &s, NULL, 0) < 0) {
        return -1;
    }
    if (out_take_first(&tx->out, "KVMSTACK-RUN")) {
        tx->changed = true;
    } else if (!out_take_first(&tx->out, "KVMSTACK-OK") && tx->rc == 0) {
        tx->failed = true;
        sbuf_addstr(&tx->err, "kvmstack: the command printed no result "
                    "marker\n");
    }
    return 0;
}

/* ---- Module table ---- */

struct module_spec {
    const char *const *args;    /* Accepted arguments. */
    const char *const *required; /* Arguments that must be given. */
    const char *const *states;  /* Values of 'state', or NULL. */
    const char *const *lists;   /* Arguments that may be lists. */
    int (*run)(struct task_exec *tx);
};

#define ARGS(...) ((const char *const[]) { __VA_ARGS__, NULL })

static const struct module_spec module_specs[MODULE_N] = {
    [MODULE_PACKAGE] = {
        ARGS("name", "state", "update_cache"), ARGS("name"),
        package_states, ARGS("name"), run_package,
    },
    [MODULE_COPY] = {
        ARGS("dest", "content", "src", "mode", "owner", "group"),
        ARGS("dest"), NULL, NULL, run_copy,
    },
    [MODULE_TEMPLATE] = {
        ARGS("src", "dest", "mode", "owner", "group"), ARGS("src", "dest"),
        NULL, NULL, run_template,
    },
    [MODULE_FILE] = {
        ARGS("path", "state", "mode", "owner", "group"), ARGS("path"),
        file_states, NULL, run_file,
    },
    [MODULE_SERVICE] = {
        ARGS("name", "state", "enabled", "daemon", "pidfile", "pattern"),
        ARGS("name"), service_states, NULL, run_service,
    },
    [MODULE_SYSCTL] = {
        ARGS("name", "value", "state", "reload", "sysctl_file"),
        ARGS("name"), present_absent, NULL, run_sysctl,
    },
    [MODULE_LINEINFILE] = {
        ARGS("path", "line", "regexp", "state", "create", "mode", "owner",
             "group"),
        ARGS("path"), present_absent, NULL, run_lineinfile,
    },
    [MODULE_COMMAND] = {
        ARGS("cmd", "argv", "creates", "removes", "chdir"), NULL, NULL,
        ARGS("argv"), run_command,
    },
    [MODULE_SHELL] = {
        ARGS("cmd", "creates", "removes", "chdir", "executable"),
        ARGS("cmd"), NULL, NULL, run_command,
    },
};

/* The literal string argument 'key' of 't', NULL if absent or
 * templated (then only the run can check it). */
static const char *
literal_arg(const struct task *t, const char *key)
{
    const char *s = json_string_value(json_object_get(t->args, key));

    return s && !strstr(s, "{{") ? s : NULL;
}

static bool
has_arg(const struct task *t, const char *key)
{
    json_t *v = json_object_get(t->args, key);

    return v && !json_is_null(v);
}

/* Load-time checks of the arguments of task 't'. */
static int
task_check_args(const struct task *t)
{
    const struct module_spec *spec = &module_specs[t->module];
    const char *module = module_names[t->module];
    const char *const paths[] = { "dest", "path", "pidfile", NULL };
    AUTOFREE char *mode = NULL;
    const char *key;
    const char *s;
    json_t *v;

    json_object_foreach(t->args, key, v) {
        if (!str_in(key, spec->args)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "unknown argument '%s' "
                         "of module '%s'", key, module);
            return -1;
        }
        if (json_is_object(v) || (json_is_array(v)
                                  && !str_in(key, spec->lists))) {
            error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' must be "
                         "a string", key);
            return -1;
        }
        if (value_check(v) < 0) {
            error_prefix("argument '%s': ", key);
            return -1;
        }
    }
    for (const char *const *r = spec->required; r && *r; r++) {
        if (!has_arg(t, *r)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "module '%s' needs "
                         "argument '%s'", module, *r);
            return -1;
        }
    }
    if ((s = literal_arg(t, "state")) && !str_in(s, spec->states)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "'state' of module '%s' "
                     "cannot be '%s'", module, s);
        return -1;
    }
    if ((s = literal_arg(t, "mode")) && mode_normalize(s, &mode) < 0) {
        return -1;
    }
    for (size_t i = 0; paths[i]; i++) {
        if ((s = literal_arg(t, paths[i]))
            && check_abs_path(paths[i], s) < 0) {
            return -1;
        }
    }
    switch (t->module) {
    case MODULE_COPY:
        if (has_arg(t, "content") == has_arg(t, "src")) {
            error_report(PROBLEM_INVALID_ARGUMENT, "module 'copy' needs "
                         "exactly one of 'content' and 'src'");
            return -1;
        }
        break;
    case MODULE_SERVICE:
        if (!has_arg(t, "state") && !has_arg(t, "enabled")) {
            error_report(PROBLEM_INVALID_ARGUMENT, "module 'service' needs "
                         "'state' or 'enabled'");
            return -1;
        }
        if ((s = literal_arg(t, "daemon"))) {
            json_t *words;

            if (cmd_split(s, &words) < 0) {
                return -1;
            }
            json_decref(words);
        }
        break;
    case MODULE_SYSCTL:
    case MODULE_LINEINFILE:
        s = literal_arg(t, "state");
        key = t->module == MODULE_SYSCTL ? "value" : "line";
        if ((!s || !strcmp(s, "present")) && !has_arg(t, key)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "module '%s' needs "
                         "argument '%s'", module, key);
            return -1;
        }
        break;
    case MODULE_COMMAND:
        if (has_arg(t, "cmd") == has_arg(t, "argv")) {
            error_report(PROBLEM_INVALID_ARGUMENT, "module 'command' needs "
                         "a command line or 'cmd', or 'argv'");
            return -1;
        }
        /* Fall through. */
    case MODULE_SHELL:
        s = json_string_value(json_object_get(t->args, "cmd"));
        if (has_arg(t, "cmd") && !s) {
            error_report(PROBLEM_INVALID_ARGUMENT, "the command must be a "
                         "string");
            return -1;
        }
        if (s && t->module == MODULE_COMMAND) {
            json_t *words;

            if (cmd_split(s, &words) < 0) {
                return -1;
            }
            json_decref(words);
        } else if (s && shell_render(s, NULL, false, NULL, NULL) < 0) {
            return -1;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ---- Loading YAML ---- */

struct loader {
    const char *path;
    yaml_document_t doc;
    size_t n_nodes;             /* Converted so far (alias bombs). */
};

static int
node_line(const yaml_node_t *node)
{
    return (int) node->start_mark.line + 1;
}

/* The text of scalar 'node', NULL if it is not a scalar. */
static const char *
node_str(const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE
           ? (const char *) node->data.scalar.value : NULL;
}

/* True if 's' is all digits after an optional sign, without a leading 0
 * (so "0755" stays a string, as a mode should). */
static bool
yaml_is_int(const char *s)
{
    s += *s == '-' || *s == '+';
    return *s && strspn(s, "0123456789") == strlen(s)
           && (s[0] != '0' || !s[1]);
}

static bool
yaml_is_float(const char *s)
{
    double d;

    return strchr(s, '.') && strspn(s, "0123456789.eE+-") == strlen(s)
           && str_number(s, &d);
}

/* A scalar as a value: plain scalars are typed as YAML 1.1 (PyYAML, so
 * Ansible) types them, except that numbers with a leading zero stay
 * strings; quoted scalars are strings. */
static json_t *
yaml_scalar(struct loader *ld, yaml_node_t *node)
{
    static const char *const yes[] = {
        "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL,
    };
    static const char *const no[] = {
        "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
        NULL,
    };
    const char *s = node_str(node);
    size_t len = node->data.scalar.length;
    json_t *v;

    if (strlen(s) != len) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %d: NUL "
                     "byte in a string", ld->path, node_line(node));
        return NULL;
    }
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!len || !strcmp(s, "~") || !strcmp(s, "null")
            || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
            return json_null();
        }
        if (str_in(s, yes) || str_in(s, no)) {
            return json_boolean(str_in(s, yes));
        }
        if (yaml_is_int(s) && len < 19) {
            return json_integer(strtoll(s, NULL, 10));
        }
        if (yaml_is_float(s)) {
            return json_real(strtod(s, NULL));
        }
    }
    v = json_stringn(s, len);
    if (!v) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %d: "
                     "string is not valid UTF-8", ld->path, node_line(node));
    }
    return v;
}

/* Converts 'node' and what it holds into a value (new reference). */
static json_t *
yaml_to_json(struct loader *ld, yaml_node_t *node, int depth)
{
    json_t *v;

    if (!node) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': broken YAML "
                     "document", ld->path);
        return NULL;
    }
    if (depth > YAML_MAX_DEPTH || ++ld->n_nodes > YAML_MAX_NODES) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %d: "
                     "nested too deep or too large", ld->path,
                     node_line(node));
        return NULL;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return yaml_scalar(ld, node);
    case YAML_SEQUENCE_NODE:
        v = json_array();
        for (yaml_node_item_t *i = node->data.sequence.items.start;
             i < node->data.sequence.items.top; i++) {
            json_t *item = yaml_to_json(ld, yaml_document_get_node(&ld->doc,
                                                                   *i),
                                        depth + 1);

            if (!item) {
                json_decref(v);
                return NULL;
            }
            json_array_append_new(v, item);
        }
        return v;
    case YAML_MAPPING_NODE:
        v = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
            const char *key = node_str(k);
            json_t *item;

            if (!key || json_object_get(v, key)) {
                error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line "
                             "%d: %s key%s%s", ld->path,
                             k ? node_line(k) : node_line(node),
                             key ? "duplicate" : "non-string",
                             key ? " " : "", key ? key : "");
                json_decref(v);
                return NULL;
            }
            item = yaml_to_json(ld, yaml_document_get_node(&ld->doc,
                                                           p->value),
                                depth + 1);
            if (!item) {
                json_decref(v);
                return NULL;
            }
            json_object_set_new(v, key, item);
        }
        return v;
    default:
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %d: "
                     "empty node", ld->path, node_line(node));
        return NULL;
    }
}

/* Parses a condition: an expression string, a boolean, or a list of them
 * that must all hold.  '*out' NULL means always. */
static int
cond_parse(const char *key, const json_t *v, struct expr **out)
{
    struct expr *e;
    const char *s;
    json_t *item;
    size_t i;

    *out = NULL;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (json_is_array(item) || cond_parse(key, item, &e) < 0) {
                if (json_is_array(item)) {
                    error_report(PROBLEM_INVALID_ARGUMENT, "'%s' cannot "
                                 "nest lists", key);
                }
                expr_free(*out);
                *out = NULL;
                return -1;
            }
            *out = *out ? expr_binary(EXPR_AND, *out, e) : e;
        }
        return 0;
    }
    if (json_is_string(v)) {
        s = json_string_value(v);
        if (strstr(s, "{{") || strstr(s, "{%")) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'%s' takes a bare "
                         "expression, without '{{ }}': '%s'", key, s);
            return -1;
        }
        *out = expr_parse(s);
        if (!*out) {
            error_prefix("'%s': ", key);
            return -1;
        }
        return 0;
    }
    if (json_is_object(v)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "'%s' must be an expression",
                     key);
        return -1;
    }
    *out = expr_new(EXPR_LITERAL);
    (*out)->value = json_incref((json_t *) v);
    return 0;
}

/* Looks up a module by name, also spelled ansible.builtin.NAME. */
static int
module_lookup(const char *key)
{
    static const char *const prefixes[] = {
        "ansible.builtin.", "ansible.legacy.",
    };

    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
        if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) {
            key += strlen(prefixes[i]);
            break;
        }
    }
    for (int m = 0; m < MODULE_N; m++) {
        if (!strcmp(key, module_names[m])) {
            return m;
        }
    }
    return -1;
}

/* Takes task key 'key' with value 'v' into 't'.  'extra_args' collects
 * `args:`. */
static int
task_key(struct task *t, bool handler, const char *key, json_t *v,
         json_t **extra_args, bool *have_module)
{
    const char *s = json_string_value(v);
    json_t *item;
    size_t i;
    int m;

    if (!strcmp(key, "when")) {
        return cond_parse(key, v, &t->when);
    } else if (!strcmp(key, "changed_when")) {
        return cond_parse(key, v, &t->changed_when);
    } else if (!strcmp(key, "failed_when")) {
        return cond_parse(key, v, &t->failed_when);
    } else if (!strcmp(key, "register")) {
        if (!s || !(isalpha((unsigned char) s[0]) || s[0] == '_')
            || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_") != strlen(s)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'register' needs a "
                         "variable name");
            return -1;
        }
        t->register_as = xstrdup(s);
    } else if (!strcmp(key, "notify")) {
        if (handler) {
            error_report(PROBLEM_INVALID_ARGUMENT, "a handler cannot "
                         "notify");
            return -1;
        }
        t->notify = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
        json_array_foreach(t->notify, i, item) {
            if (!json_is_string(item)) {
                error_report(PROBLEM_INVALID_ARGUMENT, "'notify' takes "
                             "handler names");
                return -1;
            }
        }
    } else if (!strcmp(key, "ignore_errors")) {
        bool b = value_truthy(v);

        if (s && !word_bool(s, &b)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'ignore_errors' must be "
                         "yes or no");
            return -1;
        }
        t->ignore_errors = b;
    } else if (!strcmp(key, "become")) {
        /* Ignored: the runner is root already. */
    } else if (!strcmp(key, "args")) {
        if (!json_is_object(v)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "'args' must be a "
                         "mapping");
            return -1;
        }
        *extra_args = json_incref(v);
    } else if ((m = module_lookup(key)) >= 0) {
        if (*have_module) {
            error_report(PROBLEM_INVALID_ARGUMENT, "two modules in one "
                         "task: '%s' and '%s'", module_names[t->module],
                         module_names[m]);
            return -1;
        }
        *have_module = true;
        t->module = (enum module) m;
        if (json_is_object(v)) {
            t->args = json_deep_copy(v);
        } else if (json_is_null(v)) {
            t->args = json_object();
        } else if (s && (m == MODULE_COMMAND || m == MODULE_SHELL)) {
            if (strstr(s, " creates=") || strstr(s, " removes=")
                || strstr(s, " chdir=")) {
                error_report(PROBLEM_INVALID_ARGUMENT, "write 'creates', "
                             "'removes' and 'chdir' under 'args:', not as "
                             "key=value in the command");
                return -1;
            }
            t->args = json_pack("{s:O}", "cmd", v);
        } else {
            error_report(PROBLEM_INVALID_ARGUMENT, "the arguments of module "
                         "'%s' must be a mapping", key);
            return -1;
        }
    } else {
        error_report(PROBLEM_INVALID_ARGUMENT, "unknown module or key '%s'",
                     key);
        return -1;
    }
    return 0;
}

/* Loads task (or handler) number 'pos' from 'node' into 't'. */
static int
task_load(struct loader *ld, yaml_node_t *node, bool handler, size_t pos,
          struct task *t)
{
    const char *what = handler ? "handler" : "task";
    json_t *extra_args = NULL;
    bool have_module = false;
    AUTOFREE char *label = NULL;
    const char *key;
    json_t *v;
    int rc = -1;

    t->line = node_line(node);
    if (node->type != YAML_MAPPING_NODE) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': %s #%zu "
                     "(line %d) is not a mapping", ld->path, what, pos + 1,
                     t->line);
        return -1;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        const char *name = node_str(yaml_document_get_node(&ld->doc,
                                                           p->value));

        if ((key = node_str(yaml_document_get_node(&ld->doc, p->key)))
            && !strcmp(key, "name") && name && !t->name) {
            t->name = xstrdup(name);
        }
    }
    label = t->name ? xasprintf("'%s'", t->name) : xasprintf("#%zu",
                                                             pos + 1);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         p < node->data.mapping.pairs.top; p++) {
        key = node_str(yaml_document_get_node(&ld->doc, p->key));
        if (!key) {
            error_report(PROBLEM_INVALID_ARGUMENT, "keys must be strings");
            goto out;
        }
        if (!strcmp(key, "name")) {
            if (!node_str(yaml_document_get_node(&ld->doc, p->value))) {
                error_report(PROBLEM_INVALID_ARGUMENT, "'name' must be a "
                             "string");
                goto out;
            }
            continue;
        }
        v = yaml_to_json(ld, yaml_document_get_node(&ld->doc, p->value), 1);
        if (!v) {
            goto out;
        }
        rc = task_key(t, handler, key, v, &extra_args, &have_module);
        json_decref(v);
        if (rc < 0) {
            goto out;
        }
        rc = -1;
    }
    if (!have_module) {
        error_report(PROBLEM_INVALID_ARGUMENT, "no module (one of package, "
                     "copy, template, file, service, sysctl, lineinfile, "
                     "command, shell)");
        goto out;
    }
    json_object_foreach(extra_args, key, v) {
        if (json_object_get(t->args, key)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "argument '%s' given "
                         "twice", key);
            goto out;
        }
        json_object_set(t->args, key, v);
    }
    if (task_check_args(t) < 0) {
        goto out;
    }
    if (!t->name) {
        t->name = xstrdup(module_names[t->module]);
    }
    rc = 0;

out:
    json_decref(extra_args);
    if (rc < 0) {
        error_prefix("playbook '%s': %s %s (line %d): ", ld->path, what,
                     label, t->line);
    }
    return rc;
}

/* Loads the list of tasks (or handlers) in 'node' into '*tasks'. */
static int
tasks_load(struct loader *ld, yaml_node_t *node, bool handler,
           struct task **tasks, size_t *n)
{
    size_t count;

    if (node->type != YAML_SEQUENCE_NODE) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %d: '%s' "
                     "must be a list", ld->path, node_line(node),
                     handler ? "handlers" : "tasks");
        return -1;
    }
    count = (size_t) (node->data.sequence.items.top
                      - node->data.sequence.items.start);
    *tasks = xcalloc(count ? count : 1, sizeof **tasks);
    for (*n = 0; *n < count; (*n)++) {
        yaml_node_t *item = yaml_document_get_node(
            &ld->doc, node->data.sequence.items.start[*n]);

        if (!item || task_load(ld, item, handler, *n, &(*tasks)[*n]) < 0) {
            (*n)++;             /* So that it is destroyed too. */
            return -1;
        }
    }
    return 0;
}

/* Resolves the handler names that the tasks of 'play' notify. */
static int
play_resolve_notify(struct loader *ld, struct play *play)
{
    for (size_t i = 0; i < play->n_tasks; i++) {
        struct task *t = &play->tasks[i];
        json_t *name;
        size_t j;

        t->notify_idx = xcalloc(json_array_size(t->notify) + 1,
                                sizeof *t->notify_idx);
        json_array_foreach(t->notify, j, name) {
            size_t h;

            for (h = 0; h < play->n_handlers; h++) {
                if (!strcmp(play->handlers[h].name,
                            json_string_value(name))) {
                    break;
                }
            }
            if (h == play->n_handlers) {
                error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': task "
                             "'%s' (line %d): notifies unknown handler '%s'",
                             ld->path, t->name, t->line,
                             json_string_value(name));
                return -1;
            }
            t->notify_idx[j] = h;
        }
    }
    return 0;
}

static int
play_load(struct loader *ld, yaml_node_t *node, size_t pos, struct play *p)
{
    AUTOFREE char *label = NULL;
    const char *key;

    p->line = node_line(node);
    p->vars = json_object();
    if (node->type != YAML_MAPPING_NODE) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': play #%zu "
                     "(line %d) is not a mapping", ld->path, pos + 1,
                     p->line);
        return -1;
    }
    for (yaml_node_pair_t *i = node->data.mapping.pairs.start;
         i < node->data.mapping.pairs.top; i++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, i->key);
        yaml_node_t *v = yaml_document_get_node(&ld->doc, i->value);

        if (node_str(k) && !strcmp(node_str(k), "name") && node_str(v)) {
            p->name = xstrdup(node_str(v));
        }
    }
    label = p->name ? xasprintf("'%s'", p->name) : xasprintf("#%zu",
                                                             pos + 1);
    if (!p->name) {
        p->name = xstrdup("");
    }
    for (yaml_node_pair_t *i = node->data.mapping.pairs.start;
         i < node->data.mapping.pairs.top; i++) {
        yaml_node_t *v = yaml_document_get_node(&ld->doc, i->value);

        key = node_str(yaml_document_get_node(&ld->doc, i->key));
        if (!key || !v) {
            error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': play %s "
                         "(line %d): keys must be strings", ld->path, label,
                         p->line);
            return -1;
        }
        if (!strcmp(key, "tasks") || !strcmp(key, "handlers")) {
            bool handler = !strcmp(key, "handlers");

            if (tasks_load(ld, v, handler,
                           handler ? &p->handlers : &p->tasks,
                           handler ? &p->n_handlers : &p->n_tasks) < 0) {
                return -1;
            }
        } else if (!strcmp(key, "vars")) {
            json_t *vars = yaml_to_json(ld, v, 1);

            if (!vars) {
                return -1;
            }
            if (!json_is_object(vars) && !json_is_null(vars)) {
                json_decref(vars);
                error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': play "
                             "%s (line %d): 'vars' must be a mapping",
                             ld->path, label, p->line);
                return -1;
            }
            json_object_update(p->vars, vars);
            json_decref(vars);
            if (value_check(p->vars) < 0) {
                error_prefix("playbook '%s': play %s (line %d): vars: ",
                             ld->path, label, p->line);
                return -1;
            }
        } else if (strcmp(key, "name") && strcmp(key, "hosts")
                   && strcmp(key, "become") && strcmp(key, "gather_facts")) {
            error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': play %s "
                         "(line %d): unknown key '%s'", ld->path, label,
                         p->line, key);
            return -1;
        }
    }
    return play_resolve_notify(ld, p);
}

/* Reads and checks playbook 'path'.  Returns NULL, with an error
 * reported, if it cannot be used. */
static struct playbook *
playbook_load(const char *path)
{
    AUTO(playbook_freep) struct playbook *pb = xcalloc(1, sizeof *pb);
    struct loader ld = { .path = path };
    yaml_parser_t parser;
    yaml_document_t next;
    yaml_node_t *root;
    struct sbuf text;
    FILE *f = fopen(path, "rb");
    char buf[65536];
    const char *slash = strrchr(path, '/');
    size_t n;
    int rc = -1;

    pb->path = xstrdup(path);
    pb->dir = slash ? xstrndup(path, (size_t) (slash - path)) : xstrdup(".");
    if (!f) {
        error_report(PROBLEM_NOT_FOUND, "cannot read playbook '%s': %s",
                     path, strerror(errno));
        return NULL;
    }
    sbuf_init(&text);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0
           && text.len <= PLAYBOOK_MAX_SIZE) {
        sbuf_add(&text, buf, n);
    }
    fclose(f);
    if (text.len > PLAYBOOK_MAX_SIZE) {
        error_report(PROBLEM_TOO_LARGE, "playbook '%s' is bigger than %d "
                     "bytes", path, PLAYBOOK_MAX_SIZE);
        sbuf_destroy(&text);
        return NULL;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) text.s,
                                 text.len);
    if (!yaml_parser_load(&parser, &ld.doc)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' line %zu: %s%s"
                     "%s", path, parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "invalid YAML",
                     parser.context ? " " : "",
                     parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        sbuf_destroy(&text);
        return NULL;
    }
    root = yaml_document_get_root_node(&ld.doc);
    if (yaml_parser_load(&parser, &next)) {
        if (yaml_document_get_root_node(&next)) {
            error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' holds "
                         "more than one YAML document", path);
            yaml_document_delete(&next);
            goto out;
        }
        yaml_document_delete(&next);
    }
    if (!root || root->type != YAML_SEQUENCE_NODE) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s' must be a list "
                     "of plays", path);
        goto out;
    }
    n = (size_t) (root->data.sequence.items.top
                  - root->data.sequence.items.start);
    pb->plays = xcalloc(n ? n : 1, sizeof *pb->plays);
    for (pb->n_plays = 0; pb->n_plays < n; pb->n_plays++) {
        yaml_node_t *node = yaml_document_get_node(
            &ld.doc, root->data.sequence.items.start[pb->n_plays]);

        if (!node || play_load(&ld, node, pb->n_plays,
                               &pb->plays[pb->n_plays]) < 0) {
            pb->n_plays++;
            goto out;
        }
    }
    rc = 0;

out:
    yaml_document_delete(&ld.doc);
    yaml_parser_delete(&parser);
    sbuf_destroy(&text);
    return rc ? NULL : STEAL(pb);
}

/* ---- Facts ---- */

static const char facts_sh[] =
    "echo \"arch=$(uname -m)\"\n"
    "if [ -d /run/systemd/system ]; then echo systemd=1; fi\n"
    "if [ -e /dev/kvm ]; then echo kvm=1; fi\n"
    "for x in apt-get dnf yum; do\n"
    "    if command -v \"$x\" >/dev/null 2>&1; then echo \"mgr=$x\"; fi\n"
    "done\n"
    "echo KVMSTACK-OS-RELEASE\n"
    "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null\n"
    "exit 0\n";

/* The value of an os-release line, unquoted.  Caller frees. */
static char *
os_release_value(const char *v)
{
    size_t n = strlen(v);
    struct sbuf b;

    if (n < 2 || (v[0] != '"' && v[0] != '\'') || v[n - 1] != v[0]) {
        return xstrdup(v);
    }
    sbuf_init(&b);
    for (size_t i = 1; i < n - 1; i++) {
        if (v[0] == '"' && v[i] == '\\' && i + 1 < n - 1) {
            i++;
        }
        sbuf_add(&b, v + i, 1);
    }
    return sbuf_take(&b);
}

/* Maps an os-release ID (or ID_LIKE word) to Ansible's os_family. */
static const char *
os_family_of(const char *id)
{
    static const char *const map[][2] = {
        { "debian", "Debian" }, { "ubuntu", "Debian" },
        { "rhel", "RedHat" }, { "fedora", "RedHat" },
        { "centos", "RedHat" }, { "rocky", "RedHat" },
        { "almalinux", "RedHat" }, { "ol", "RedHat" },
        { "amzn", "RedHat" }, { "suse", "Suse" }, { "opensuse", "Suse" },
        { "sles", "Suse" }, { "alpine", "Alpine" }, { "arch", "Archlinux" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
        if (!strcmp(id, map[i][0])) {
            return map[i][1];
        }
    }
    return NULL;
}

/* Ansible's distribution name for os-release ID 'id'.  Caller frees. */
static char *
distribution_of(const char *id)
{
    static const char *const map[][2] = {
        { "debian", "Debian" }, { "ubuntu", "Ubuntu" },
        { "centos", "CentOS" }, { "rhel", "RedHat" },
        { "fedora", "Fedora" }, { "rocky", "Rocky" },
        { "almalinux", "AlmaLinux" }, { "ol", "OracleLinux" },
        { "amzn", "Amazon" },
    };
    char *s;

    for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
        if (!strcmp(id, map[i][0])) {
            return xstrdup(map[i][1]);
        }
    }
    s = xstrdup(*id ? id : "unknown");
    s[0] = (char) toupper((unsigned char) s[0]);
    return s;
}

/* Turns the output of facts_sh into the facts object. */
static json_t *
facts_parse(const char *out)
{
    json_t *os = json_object();
    json_t *facts = json_object();
    AUTOFREE char *copy = xstrdup(out);
    AUTOFREE char *like = NULL;
    AUTOFREE char *dist = NULL;
    AUTOFREE char *major = NULL;
    const char *family = NULL;
    const char *id;
    const char *version;
    const char *arch = "";
    const char *mgr = "unknown";
    bool in_os = false;
    bool systemd = false;
    bool kvm = false;
    bool apt = false;
    bool dnf = false;
    bool yum = false;
    char *save = NULL;
    char *w;

    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');

        if (!strcmp(line, "KVMSTACK-OS-RELEASE")) {
            in_os = true;
        } else if (in_os && eq && line[0] != '#') {
            AUTOFREE char *value = os_release_value(eq + 1);

            *eq = '\0';
            json_object_set_new(os, line, json_string(value));
        } else if (!strncmp(line, "arch=", 5)) {
            arch = line + 5;
        } else if (!strcmp(line, "systemd=1")) {
            systemd = true;
        } else if (!strcmp(line, "kvm=1")) {
            kvm = true;
        } else if (!strncmp(line, "mgr=", 4)) {
            apt = apt || !strcmp(line + 4, "apt-get");
            dnf = dnf || !strcmp(line + 4, "dnf");
            yum = yum || !strcmp(line + 4, "yum");
        }
    }
    id = json_string_value(json_object_get(os, "ID"));
    id = id ? id : "";
    version = json_string_value(json_object_get(os, "VERSION_ID"));
    version = version ? version : "";
    family = os_family_of(id);
    like = xstrdup(json_string_value(json_object_get(os, "ID_LIKE"))
                   ? json_string_value(json_object_get(os, "ID_LIKE")) : "");
    save = NULL;
    for (w = strtok_r(like, " ", &save); w && !family;
         w = strtok_r(NULL, " ", &save)) {
        family = os_family_of(w);
    }
    dist = distribution_of(id);
    major = xstrndup(version, strcspn(version, "."));
    if (apt && family && !strcmp(family, "Debian")) {
        mgr = "apt";
    } else if (dnf) {
        mgr = "dnf";
    } else if (yum) {
        mgr = "yum";
    } else if (apt) {
        mgr = "apt";
    }
    json_object_set_new(facts, "os_family",
                        json_string(family ? family : dist));
    json_object_set_new(facts, "distribution", json_string(dist));
    json_object_set_new(facts, "distribution_version", json_string(version));
    json_object_set_new(facts, "distribution_major_version",
                        json_string(major));
    json_object_set_new(facts, "pkg_mgr", json_string(mgr));
    json_object_set_new(facts, "architecture", json_string(arch));
    json_object_set_new(facts, "has_systemd", json_boolean(systemd));
    json_object_set_new(facts, "has_kvm", json_boolean(kvm));
    json_decref(os);
    return facts;
}

/* Adds Ansible's spellings of the facts: ansible_facts.X and
 * ansible_X. */
static void
facts_add_ansible_names(json_t *facts)
{
    json_t *copy = json_deep_copy(facts);
    const char *key;
    json_t *v;

    json_object_foreach(copy, key, v) {
        AUTOFREE char *name = xasprintf("ansible_%s", key);

        json_object_set(facts, name, v);
    }
    json_object_set_new(facts, "ansible_facts", copy);
}

/* ---- The run ---- */

static void
progress(struct run *run, int idx, const char *task, const char *result)
{
    const struct playbook_target *t = run->target;

    if (result) {
        LOG_DBG("playbook '%s': task '%s': %s", run->pb->path, task, result);
    }
    if (t->progress) {
        t->progress(t->progress_aux, idx, run->total, task, result);
    }
}

/* The last 'n' lines of 's'. */
static const char *
tail_lines(const char *s, int n)
{
    const char *p = s + strlen(s);

    if (p > s && p[-1] == '\n') {
        p--;
    }
    while (p > s) {
        if (p[-1] == '\n' && --n == 0) {
            break;
        }
        p--;
    }
    return p;
}

/* The last non-empty line of 's', at most 200 bytes.  Caller frees. */
static char *
last_line(const char *s)
{
    const char *end = s + strlen(s);
    const char *start;

    while (end > s && isspace((unsigned char) end[-1])) {
        end--;
    }
    start = end;
    while (start > s && start[-1] != '\n') {
        start--;
    }
    return xstrndup(start, (size_t) (end - start) > 200
                           ? 200 : (size_t) (end - start));
}

/* Records in the recap that task 't' failed, and reports it. */
static void
task_failed(struct run *run, const struct task *t,
            const struct task_exec *tx, const char *msg)
{
    struct playbook_recap *recap = run->recap;
    AUTOFREE char *summary = NULL;
    struct sbuf d;

    sbuf_init(&d);
    sbuf_addf(&d, "task: %s\n", t->name);
    if (tx->cmd) {
        sbuf_addf(&d, "command: %.*s%s\n", DETAIL_COMMAND_MAX, tx->cmd,
                  strlen(tx->cmd) > DETAIL_COMMAND_MAX ? "..." : "");
        sbuf_addf(&d, "exit code: %d\n", tx->rc);
    }
    if (msg) {
        sbuf_addf(&d, "error: %s\n", msg);
    }
    if (tx->err.s && tx->err.len) {
        sbuf_addf(&d, "stderr (last lines):\n%s",
                  tail_lines(tx->err.s, DETAIL_STDERR_LINES));
        if (tx->err.s[tx->err.len - 1] != '\n') {
            sbuf_addstr(&d, "\n");
        }
    }
    recap->failed++;
    free(recap->failed_task);
    free(recap->failed_detail);
    recap->failed_task = xstrdup(t->name);
    recap->failed_detail = sbuf_take(&d);
    if (msg) {
        summary = xstrdup(msg);
    } else {
        AUTOFREE char *line = last_line(tx->err.s ? tx->err.s : "");

        summary = xasprintf("exit code %d%s%s", tx->rc, *line ? ": " : "",
                            line);
    }
    if (!tx->transport_failed) {
        error_report(PROBLEM_INTERNAL_ERROR, "task '%s' failed: %s",
                     t->name, summary);
    } else {
        error_prefix("task '%s' failed: ", t->name);
    }
    LOG_INFO("playbook '%s': task '%s' failed: %s", run->pb->path, t->name,
             summary);
}

/* The registered result of a task. */
static json_t *
task_result(const struct task_exec *tx, bool failed)
{
    json_t *r = json_object();
    json_t *lines = json_array();
    AUTOFREE char *copy = xstrdup(tx->out.s ? tx->out.s : "");
    size_t len = strlen(copy);
    char *save = NULL;

    if (len && copy[len - 1] == '\n') {
        copy[len - 1] = '\0';
    }
    for (char *l = strtok_r(copy, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        json_array_append_new(lines, json_string(l));
    }
    json_object_set_new(r, "rc", json_integer(tx->rc));
    json_object_set_new(r, "stdout", json_string(tx->out.s ? tx->out.s
                                                           : ""));
    json_object_set_new(r, "stderr", json_string(tx->err.s ? tx->err.s
                                                           : ""));
    json_object_set_new(r, "stdout_lines", lines);
    json_object_set_new(r, "changed", json_boolean(tx->changed));
    json_object_set_new(r, "failed", json_boolean(failed));
    json_object_set_new(r, "skipped", json_false());
    return r;
}

/* Runs task 't' of a play; marks the handlers it notifies in 'notified'.
 * Returns -1 when the play must stop. */
static int
task_run(struct run *run, const struct task *t, struct scope *sc,
         bool *notified)
{
    struct task_exec tx = { .run = run, .task = t, .scope = sc, .rc = -1 };
    AUTOFREE char *msg = NULL;
    json_t *result = NULL;
    int idx = run->index++;
    bool go = true;
    bool failed;
    bool b;
    int rc = 0;

    sbuf_init(&tx.out);
    sbuf_init(&tx.err);
    progress(run, idx, t->name, NULL);
    if (t->when && expr_truth(t->when, sc, &go) < 0) {
        msg = xasprintf("when: %s", error_last_message());
        go = true;
    }
    if (!go) {
        if (t->register_as) {
            json_object_set_new(run->regs, t->register_as,
                                json_pack("{s:b, s:b, s:b}", "changed", 0,
                                          "skipped", 1, "failed", 0));
        }
        run->recap->skipped++;
        progress(run, idx, t->name, "skipped");
        goto out;
    }
    if (!msg && module_specs[t->module].run(&tx) < 0
        && !tx.transport_failed) {
        msg = xstrdup(error_last_message());
    }
    if (tx.transport_failed) {
        task_failed(run, t, &tx, error_last_message());
        progress(run, idx, t->name, "failed");
        rc = -1;
        goto out;
    }
    failed = msg || tx.failed || tx.rc != 0;
    result = task_result(&tx, failed);
    if (t->register_as) {
        json_object_set(run->regs, t->register_as, result);
    }
    if (!msg && t->changed_when) {
        if (expr_truth(t->changed_when, sc, &b) < 0) {
            msg = xasprintf("changed_when: %s", error_last_message());
            failed = true;
        } else {
            tx.changed = b;
        }
    }
    if (!msg && t->failed_when) {
        if (expr_truth(t->failed_when, sc, &b) < 0) {
            msg = xasprintf("failed_when: %s", error_last_message());
        } else if ((failed = b) && tx.rc == 0 && !tx.failed) {
            msg = xstrdup("failed_when is true");
        }
    }
    failed = failed || msg;
    json_object_set_new(result, "changed", json_boolean(tx.changed));
    json_object_set_new(result, "failed", json_boolean(failed));
    if (failed && t->ignore_errors) {
        LOG_INFO("playbook '%s': task '%s' failed, ignored", run->pb->path,
                 t->name);
        run->recap->ok++;
        run->recap->ignored++;
        progress(run, idx, t->name, "ignored");
    } else if (failed) {
        task_failed(run, t, &tx, msg);
        progress(run, idx, t->name, "failed");
        rc = -1;
    } else {
        run->recap->ok++;
        if (tx.changed) {
            run->recap->changed++;
            for (size_t i = 0; i < json_array_size(t->notify); i++) {
                notified[t->notify_idx[i]] = true;
            }
        }
        progress(run, idx, t->name, tx.changed ? "changed" : "ok");
    }

out:
    json_decref(result);
    free(tx.cmd);
    sbuf_destroy(&tx.out);
    sbuf_destroy(&tx.err);
    return rc;
}

static int
gather_facts(struct run *run)
{
    struct task facts_task = { .name = (char *) "Gathering Facts" };
    struct task_exec tx = { .run = run, .task = &facts_task, .rc = -1 };
    struct sbuf s;
    int rc = -1;

    sbuf_init(&tx.out);
    sbuf_init(&tx.err);
    sbuf_init(&s);
    sbuf_addstr(&s, facts_sh);
    progress(run, run->index, facts_task.name, NULL);
    if (tx_exec(&tx, &s, NULL, 0) < 0 || tx.rc != 0) {
        task_failed(run, &facts_task, &tx, tx.transport_failed
                    ? error_last_message() : NULL);
        progress(run, run->index++, facts_task.name, "failed");
        goto out;
    }
    run->facts = facts_parse(tx.out.s);
    facts_add_ansible_names(run->facts);
    run->recap->ok++;
    progress(run, run->index++, facts_task.name, "ok");
    rc = 0;

out:
    free(tx.cmd);
    sbuf_destroy(&tx.out);
    sbuf_destroy(&tx.err);
    return rc;
}

static int
play_run(struct run *run, const struct play *play)
{
    struct scope sc = {
        .extra = run->extra, .regs = run->regs, .play_vars = play->vars,
        .facts = run->facts,
    };
    AUTOFREE bool *notified = xcalloc(play->n_handlers + 1,
                                      sizeof *notified);

    LOG_INFO("playbook '%s': play '%s'", run->pb->path, play->name);
    for (size_t i = 0; i < play->n_tasks; i++) {
        if (task_run(run, &play->tasks[i], &sc, notified) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < play->n_handlers; i++) {
        if (notified[i] && task_run(run, &play->handlers[i], &sc,
                                    notified) < 0) {
            return -1;
        }
    }
    return 0;
}

int
playbook_run(const char *path, const struct playbook_target *target,
             json_t *vars, struct playbook_recap *recap)
{
    struct playbook *pb;
    struct run run;
    int rc = -1;

    memset(recap, 0, sizeof *recap);
    if (vars && !json_is_object(vars)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "playbook '%s': extra vars "
                     "must be an object", path);
        return -1;
    }
    pb = playbook_load(path);
    if (!pb) {
        return -1;
    }
    memset(&run, 0, sizeof run);
    run.pb = pb;
    run.target = target;
    run.recap = recap;
    run.extra = vars;
    run.regs = json_object();
    run.total = 1;
    for (size_t i = 0; i < pb->n_plays; i++) {
        run.total += (int) (pb->plays[i].n_tasks + pb->plays[i].n_handlers);
    }
    if (gather_facts(&run) == 0) {
        rc = 0;
        for (size_t i = 0; i < pb->n_plays && !rc; i++) {
            rc = play_run(&run, &pb->plays[i]);
        }
    }
    recap->registered = run.regs;
    json_decref(run.facts);
    playbook_free(pb);
    return rc;
}

int
playbook_check(const char *path)
{
    struct playbook *pb = playbook_load(path);

    if (!pb) {
        return -1;
    }
    playbook_free(pb);
    return 0;
}

void
playbook_recap_destroy(struct playbook_recap *recap)
{
    free(recap->failed_task);
    free(recap->failed_detail);
    json_decref(recap->registered);
    memset(recap, 0, sizeof *recap);
}

const char *
playbook_recap_line(const struct playbook_recap *recap, char *buf,
                    size_t size)
{
    int n = snprintf(buf, size, "ok=%d changed=%d failed=%d skipped=%d",
                     recap->ok, recap->changed, recap->failed,
                     recap->skipped);

    if (recap->ignored && n >= 0 && (size_t) n < size) {
        snprintf(buf + n, size - (size_t) n, " ignored=%d", recap->ignored);
    }
    return buf;
}

const char *
playbook_recap_get_stdout(const struct playbook_recap *recap,
                          const char *name)
{
    return json_string_value(json_object_get(
                                 json_object_get(recap->registered, name),
                                 "stdout"));
}

/* ---- Persistent shell transport ---- */

/* One shell on the target, fed commands one after the other on its
 * standard input: each task then costs a round trip and a fork instead of
 * a new SSH session.  Each command runs as `/bin/sh -c "$_kc"` (so its
 * `exit` ends only itself) with stdin from /dev/null or from a base64
 * here-document, stderr to a file; then the shell prints
 * "\nKVMSTACK-END-<nonce> <status> <stderr bytes>\n" and the stderr.  The
 * nonce is random per shell, so no output can fake the frame. */
struct playbook_shell {
    playbook_stream_write_fn *write;
    playbook_stream_read_fn *read;
    void *aux;
    int timeout_ms;             /* Per command; 0: none. */
    char nonce[33];
    bool started;               /* KVMSTACK_E (the stderr file) exists. */
    bool broken;                /* The stream failed: every exec fails. */
    struct sbuf buf;            /* Read but not yet consumed. */
};

struct playbook_shell *
playbook_shell_new(playbook_stream_write_fn *write_fn,
                   playbook_stream_read_fn *read_fn, void *aux,
                   int timeout_ms)
{
    static const char hex[] = "0123456789abcdef";
    struct playbook_shell *sh = xcalloc(1, sizeof *sh);
    unsigned char r[16];

    sh->write = write_fn;
    sh->read = read_fn;
    sh->aux = aux;
    sh->timeout_ms = timeout_ms;
    random_bytes(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++) {
        sh->nonce[2 * i] = hex[r[i] >> 4];
        sh->nonce[2 * i + 1] = hex[r[i] & 0xf];
    }
    sbuf_init(&sh->buf);
    return sh;
}

void
playbook_shell_free(struct playbook_shell *sh)
{
    static const char bye[] = "rm -f \"$KVMSTACK_E\"; exit 0\n";

    if (!sh) {
        return;
    }
    if (sh->started && !sh->broken) {
        sh->write(sh->aux, bye, strlen(bye));
    }
    sbuf_destroy(&sh->buf);
    free(sh);
}

/* Appends 'n' bytes of 'data' to 'b' in base64, 76 columns a line. */
static void
sbuf_add_base64(struct sbuf *b, const unsigned char *data, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned) data[i] << 16;

        v |= i + 1 < n ? (unsigned) data[i + 1] << 8 : 0;
        v |= i + 2 < n ? data[i + 2] : 0;
        q[0] = tab[v >> 18];
        q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        sbuf_add(b, q, 4);
        if ((i / 3 + 1) % 19 == 0 || i + 3 >= n) {
            sbuf_addstr(b, "\n");
        }
    }
}

/* Takes one framed result out of sh->buf if it is all there.  Returns 1
 * if it did, 0 if more is needed. */
static int
shell_take_result(struct playbook_shell *sh, struct sbuf *out,
                  struct sbuf *err, int *status)
{
    AUTOFREE char *marker = xasprintf("\nKVMSTACK-END-%s ", sh->nonce);
    size_t mlen = strlen(marker);
    const char *m = memmem(sh->buf.s, sh->buf.len, marker, mlen);
    const char *end = sh->buf.s + sh->buf.len;
    const char *nl;
    const char *rest;
    unsigned long long errlen;
    int rc;

    if (!m || !(nl = memchr(m + mlen, '\n', (size_t) (end - m - mlen)))) {
        return 0;
    }
    if (sscanf(m + mlen, "%d %llu", &rc, &errlen) != 2) {
        errlen = 0;
        rc = -1;
    }
    rest = nl + 1;
    if ((unsigned long long) (end - rest) < errlen) {
        return 0;
    }
    if (out) {
        sbuf_add(out, sh->buf.s, (size_t) (m - sh->buf.s));
    }
    if (err) {
        sbuf_add(err, rest, (size_t) errlen);
    }
    *status = rc;
    rest += errlen;
    sh->buf.len = (size_t) (end - rest);
    memmove(sh->buf.s, rest, sh->buf.len);
    sh->buf.s[sh->buf.len] = '\0';
    return 1;
}

int
playbook_shell_exec(void *aux, const char *cmd, const void *in,
                    size_t in_len, struct sbuf *out, struct sbuf *err,
                    int *status)
{
    struct playbook_shell *sh = aux;
    int64_t deadline = sh->timeout_ms > 0 ? time_msec() + sh->timeout_ms
                                          : 0;
    struct sbuf s;
    int rc;

    *status = -1;
    if (sh->broken) {
        error_report(PROBLEM_HOST_UNREACHABLE, "the remote shell is gone");
        return -1;
    }
    sbuf_init(&s);
    if (!sh->started) {
        sbuf_addstr(&s, "KVMSTACK_E=$(mktemp) || exit 1\n");
        sh->started = true;
    }
    sbuf_addstr(&s, "_kc=");
    sbuf_add_quoted(&s, cmd);
    sbuf_addstr(&s, "\n");
    if (in) {
        sbuf_addf(&s, "base64 -d <<'KVMSTACK-IN-%s' | /bin/sh -c \"$_kc\" "
                  "2>\"$KVMSTACK_E\"\n", sh->nonce);
        sbuf_add_base64(&s, in, in_len);
        sbuf_addf(&s, "KVMSTACK-IN-%s\n", sh->nonce);
    } else {
        sbuf_addstr(&s, "/bin/sh -c \"$_kc\" 2>\"$KVMSTACK_E\" </dev/null\n");
    }
    sbuf_addf(&s, "_kr=$?; printf '\\nKVMSTACK-END-%s %%d %%d\\n' \"$_kr\" "
              "\"$(wc -c < \"$KVMSTACK_E\")\"; cat \"$KVMSTACK_E\"\n",
              sh->nonce);
    rc = sh->write(sh->aux, s.s, s.len);
    sbuf_destroy(&s);
    if (rc < 0) {
        sh->broken = true;
        return -1;
    }
    while (!shell_take_result(sh, out, err, status)) {
        int wait = 1000;

        if (deadline) {
            int64_t left = deadline - time_msec();

            if (left <= 0) {
                sh->broken = true;
                error_report(PROBLEM_TIMEOUT, "the remote command did not "
                             "finish within %d ms", sh->timeout_ms);
                return -1;
            }
            wait = left < wait ? (int) left : wait;
        }
        if (sh->read(sh->aux, &sh->buf, wait) < 0) {
            sh->broken = true;
            return -1;
        }
    }
    return 0;
}
