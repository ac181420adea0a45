"""Every route of mgmt/routes.c answers 401 without a session and with a
bogus one; login is the one public route.  The routes are read from the
source (entries and CRUD-style macros), so a new route is covered without
touching this file."""

import re

from harness import REPO, case, check, expect, rand_uuid

ROUTES_C = REPO / "mgmt" / "routes.c"
ENTRY = re.compile(r'\{\s*"(GET|POST|PUT|DELETE|PATCH|HEAD)"\s*,\s*'
                   r'"([^"]*)"\s*,([^{}]*)\}', re.S)


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", " ", src)


def is_public(rest):
    m = re.search(r"(true|false)\s*,?\s*$", rest.strip())
    if not m:
        raise ValueError("cannot read the 'public' flag of route entry "
                         "'...%s}'" % rest.strip()[-60:])
    return m.group(1) == "true"


def parse_routes(path=ROUTES_C):
    """[(method, pattern, public)] of api_routes[], macros expanded."""
    src = strip_comments(path.read_text())
    src = src.replace("\\\n", " ")
    macros = {}
    for m in re.finditer(r"#define\s+(\w+)\(([^)]*)\)([^\n]*)", src):
        params = [p.strip() for p in m.group(2).split(",")]
        body = m.group(3)
        entries = []
        for e in re.finditer(
                r'\{\s*"(GET|POST|PUT|DELETE|PATCH|HEAD)"\s*,\s*' +
                re.escape(params[0]) + r'\s*(?:"([^"]*)")?\s*,([^{}]*)\}',
                body):
            entries.append((e.group(1), e.group(2) or "",
                            is_public(e.group(3))))
        if entries:
            macros[m.group(1)] = entries
    m = re.search(r"api_routes\s*\[\s*\]\s*=\s*\{(.*?)\n\};", src, re.S)
    if not m:
        raise ValueError("no 'api_routes[] = { ... };' in %s" % path)
    table = m.group(1)
    routes = []
    # Walk the table in order: direct entries and macro calls.
    macro_call = (r"\b(%s)\(\s*\"([^\"]*)\"" % "|".join(map(re.escape,
                                                            macros))
                  if macros else r"(?!x)x")
    for t in re.finditer(ENTRY.pattern + "|" + macro_call, table, re.S):
        if t.group(1):
            routes.append((t.group(1), t.group(2), is_public(t.group(3))))
        else:
            for method, suffix, public in macros[t.group(4)]:
                routes.append((method, t.group(5) + suffix, public))
    return routes


def fill(pattern):
    return pattern.replace("{}", rand_uuid())


@case("routes-need-session", order=20)
def routes_need_session(t):
    srv = t.env.main()
    c = srv.login()
    with t.step("parse the routes of mgmt/routes.c"):
        routes = parse_routes()
        check(len(routes) >= 40, "only %d routes parsed from %s: the "
              "parser no longer understands the file" % (len(routes),
                                                         ROUTES_C))
        public = [(m, p) for m, p, pub in routes if pub]
        check(public == [("PUT", "/accounts/login")],
              "public routes: %r (only login may be public)" % public)
        seen = set()
        unique = []
        for m, p, pub in routes:
            if (m, p) in seen:
                # An earlier entry overrides a generic one (first match
                # wins in http.c); probe each (method, path) once.
                t.tap.diag("route %s %s appears twice; the first entry "
                           "answers" % (m, p))
                continue
            seen.add((m, p))
            unique.append((m, p, pub))
        routes[:] = unique

    with t.step("login is public (answers without a session)"):
        r = c.with_session(None).put("/accounts/login",
                                     body={"logInByAccount": {}})
        expect(r, 400)

    anon = c.with_session(None)
    bogus = c.with_session(rand_uuid())
    malformed = c.with_session(None)

    def probe(method, pattern):
        body = {"params": {}} if method in ("POST", "PUT") else None
        path = fill(pattern)
        for who, client, hdrs in (
                ("no session", anon, None),
                ("unknown session", bogus, None),
                ("malformed header", malformed,
                 {"Authorization": "Bearer " + rand_uuid()})):
            r = client.request(method, path, body=body, headers=hdrs)
            check(r.status == 401, "%s: expected 401, got %r" % (who, r))
            check(r.error.get("code") == "ID.1001", "%s: error %r"
                  % (who, r))
            check(r.header("WWW-Authenticate"), "%s: 401 without "
                  "WWW-Authenticate" % who)

    for method, pattern, public in routes:
        if public:
            continue
        t.item("%s %s" % (method, pattern), probe, method, pattern)
