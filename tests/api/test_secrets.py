"""The SSH passwords of add-kvm-host and add-sftp-backup-storage never reach
the database file, its WAL (or shared-memory index) or the server log:
the raw bytes are searched after successful and refused adds."""

import os
import secrets

from harness import TEST_HOST_PASSWORD, case, check, expect


@case("secrets", order=50)
def secrets_case(t):
    srv = t.env.main()
    c = srv.login()
    pw = {k: "%s-%s" % (k, secrets.token_hex(12))
          for k in ("host", "bs", "host-refused", "bs-refused", "host-dup")}
    # The passwords of the other cases, when they ran before.
    pw.update({"bad-input host": "bi-host-password",
               "bad-input storage": "bi-bs-password"})
    if TEST_HOST_PASSWORD:
        # The tutorial's HOST1 and BACKUP-STORAGE1 (the test host).
        pw["test host"] = TEST_HOST_PASSWORD

    with t.step("add a KVM host and an SFTP backup storage with passwords"):
        zone = c.create("/zones", {"name": "SEC-ZONE"})["uuid"]
        cluster = c.create("/clusters", {"name": "SEC-CLUSTER",
                                         "zoneUuid": zone,
                                         "hypervisorType": "KVM"})["uuid"]
        # Whether the job can reach an SSH server (a version with host
        # bootstrap fails it: port 1 is closed) does not matter here; the
        # password must be gone either way.
        j = c.job("/hosts/kvm", {"name": "SEC-HOST", "clusterUuid": cluster,
                                 "managementIp": "127.0.0.51", "sshPort": 1,
                                 "password": pw["host"]})
        expect(j, (200, 503))
        host_kept = j.status == 200
        check(pw["host"] not in j.raw.decode(), "job result echoes the "
              "password")
        j = c.job("/backup-storage/sftp", {
            "name": "SEC-BS", "url": "/sec", "hostname": "127.0.0.52",
            "sshPort": 1,
            "password": pw["bs"]})
        expect(j, (200, 503))
        check(pw["bs"] not in j.raw.decode(), "job result echoes the "
              "password")
        for path in ("/hosts", "/backup-storage"):
            r = expect(c.get(path), 200)
            check(pw["host"] not in r.raw.decode()
                  and pw["bs"] not in r.raw.decode(),
                  "%s shows a password" % path)

    with t.step("refused adds carrying passwords"):
        r = c.post("/hosts/kvm", {"name": "SEC-HOST-X",
                                  "clusterUuid": cluster,
                                  "managementIp": "127.0.0.300",
                                  "password": pw["host-refused"]})
        expect(r, 400, field="managementIp")
        r = c.post("/hosts/kvm", {"name": "SEC-HOST-DUP",
                                  "clusterUuid": cluster,
                                  "managementIp": "127.0.0.51", "sshPort": 1,
                                  "password": pw["host-dup"]})
        if host_kept:
            expect(r, 409, field="managementIp")
        else:
            expect(r, 202)
            c.wait_job(r.body["location"])
        r = c.post("/backup-storage/sftp", {"name": "SEC-BS-X",
                                            "url": "relative",
                                            "hostname": "127.0.0.53",
                                            "password": pw["bs-refused"]})
        expect(r, 400, field="url")
        for r2 in (r,):
            check(pw["bs-refused"] not in r2.raw.decode(),
                  "error echoes the password")

    def grep(label, path):
        if not os.path.exists(path):
            return
        data = open(path, "rb").read()
        found = [k for k, v in pw.items() if v.encode() in data]
        check(not found, "%s (%s) contains the password(s) of %s"
              % (label, path, ", ".join(found)))

    with t.step("no password in the database file"):
        check(os.path.getsize(srv.db) > 0, "empty database file")
        grep("database", srv.db)

    with t.step("no password in the WAL and shared-memory files"):
        check(os.path.exists(srv.db + "-wal"), "no WAL next to %s (the "
              "server should run in WAL mode)" % srv.db)
        grep("WAL", srv.db + "-wal")
        grep("shm", srv.db + "-shm")

    with t.step("no password in the server log"):
        check(os.path.getsize(srv.log) > 0, "empty server log")
        grep("server log", str(srv.log))
