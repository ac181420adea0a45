-- get.lua: GET /zstack/v1/port-forwarding/{uuid} of one rule.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/zstack/v1/port-forwarding/" .. os.getenv("BENCH_RULE")
auth_headers(wrk.headers)
