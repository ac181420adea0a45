-- login.lua: PUT /zstack/v1/accounts/login with the right password (as
-- ZStack's clients send it, the SHA-512 hex digest).  Failures are rate
-- limited, correct logins are not; each login verifies a yescrypt hash and
-- writes a session row.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

wrk.method = "PUT"
wrk.path = "/zstack/v1/accounts/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
   '{"logInByAccount":{"accountName":"admin","password":"%s"}}',
   os.getenv("BENCH_PASSWORD_SHA512"))
