"""Sessions: logout, expiry (--session-timeout 1), login with the SHA-512
digest of the password, wrong passwords, and the lockout after 5 failed
logins (per client address and account)."""

import hashlib
import socket
import time

from harness import (SERVER_ARGS, Client, Server, case, check, expect,
                     rand_uuid)


def can_bind(ip):
    try:
        with socket.socket() as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


@case("sessions", order=60)
def sessions(t):
    srv = t.env.main()
    anon = Client(srv.url)

    with t.step("logout makes the session answer 401"):
        a = srv.login()
        b = srv.login()
        check(a.session != b.session, "two logins gave one session")
        expect(a.get("/zones"), 200)
        expect(a.delete("/accounts/sessions/" + a.session), 200)
        r = expect(a.get("/zones"), 401)
        check(r.error.get("code") == "ID.1001", "error: %r" % r)
        expect(a.delete("/accounts/sessions/" + a.session), 401)
        expect(b.get("/zones"), 200)

    with t.step("login with the SHA-512 hex digest of the password"):
        digest = hashlib.sha512(srv.password.encode()).hexdigest()
        c = anon.login(digest)
        expect(c.get("/zones"), 200)
        c = anon.login(digest.upper())
        expect(c.get("/zones"), 200)

    with t.step("login refuses a non-string password and unknown fields"):
        expect(anon.put("/accounts/login", body={"logInByAccount": {
            "accountName": "admin", "password": 1}}), 400, field="password")
        expect(anon.put("/accounts/login", body={"logInByAccount": {
            "accountName": "admin", "password": srv.password, "x": 1}}),
            400, field="x")

    acct = Server("api-account", args=SERVER_ARGS)
    t.env.active.append(acct)
    try:
        with t.step("updateAccount: the old password is checked, the new "
                    "one replaces it, sessions stay valid"):
            acct.start()
            c = acct.login()
            uuid = expect(c.get("/accounts"), 200).invs[0]["uuid"]
            path = "/accounts/%s" % uuid
            new = "new-" + acct.password
            expect(c.action(path, "updateAccount", {
                "password": new, "oldPassword": "wrong"}), 401,
                field="oldPassword")
            expect(c.action(path, "updateAccount", {
                "password": "short", "oldPassword": acct.password}), 400,
                field="password")
            expect(c.action("/accounts/" + rand_uuid(), "updateAccount", {
                "password": new, "oldPassword": acct.password}), (401, 403))
            r = expect(c.action(path, "updateAccount", {
                "password": new, "oldPassword": acct.password}), 200)
            check(r.inv["uuid"] == uuid and "passwordHash" not in r.inv,
                  "account inventory: %r" % r)
            expect(Client(acct.url).login_resp(acct.password), 401)
            expect(Client(acct.url).login(new).get("/zones"), 200)
            expect(c.get("/zones"), 200)
    finally:
        acct.stop()
        t.env.active.remove(acct)

    other = Server("api-sessions",
                   args=SERVER_ARGS + ["--session-timeout", "1"])
    t.env.active.append(other)
    try:
        with t.step("start a server with --session-timeout 1"):
            other.start()
        oc = Client(other.url)

        with t.step("sessions expire after --session-timeout"):
            t0 = time.monotonic()
            s = oc.login(other.password)
            r = s.get("/zones")
            if time.monotonic() - t0 < 0.8:
                expect(r, 200)
            deadline = t0 + 15
            while True:
                r = s.get("/zones")
                if r.status == 401:
                    break
                expect(r, 200)
                check(time.monotonic() < deadline, "the session still "
                      "works 15 s after login with --session-timeout 1")
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
            check(elapsed >= 0.95, "the session expired after %.2f s, "
                  "before its 1 s timeout" % elapsed)
            check("expired" in r.error.get("details", ""),
                  "the 401 should say the session expired: %r" % r)

        with t.step("wrong password and unknown account answer 401"):
            expect(oc.login_resp("wrong-" + other.password), 401)
            expect(oc.login_resp(other.password, account="nobody"), 401)
            # A success resets the failure count of (address, account).
            oc.login(other.password)

        with t.step("after 5 wrong passwords the 6th login (even correct) "
                    "answers 429"):
            for i in range(5):
                r = oc.login_resp("wrong-%d" % i)
                check(r.status == 401, "wrong password #%d: %r" % (i + 1,
                                                                  r))
            r = oc.login_resp(other.password)
            expect(r, 429)
            check(r.header("Retry-After"), "429 without Retry-After")
            expect(oc.login_resp(hashlib.sha512(
                other.password.encode()).hexdigest()), 429)

        if can_bind("127.0.0.2"):
            with t.step("the lockout is per client address: another "
                        "address still logs in"):
                c2 = Client(other.url, source_ip="127.0.0.2")
                expect(c2.login(other.password).get("/zones"), 200)
        else:
            t.skip("the lockout is per client address: another address "
                   "still logs in", "cannot bind 127.0.0.2 here")
    finally:
        other.stop()
        t.env.active.remove(other)
