-- list.lua: GET /zstack/v1/port-forwarding?limit=100&start=<page> over
-- BENCH_RULES rules (10,000), a random page per request.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local pages = math.floor(tonumber(os.getenv("BENCH_RULES")) / 100)
local headers = auth_headers({})

function init(args)
   math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
   local start = math.random(0, pages - 1) * 100
   return wrk.format("GET", "/zstack/v1/port-forwarding?limit=100&start="
                     .. start, headers)
end

