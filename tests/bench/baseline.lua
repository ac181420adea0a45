-- baseline.lua: GET /zstack/v1/accounts without a session.  The server
-- answers 401 after routing, before any database access: the cost of
-- HTTP, routing and the JSON error reply, against which the other cases
-- are compared.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/zstack/v1/accounts"
