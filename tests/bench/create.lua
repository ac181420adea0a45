-- create.lua: POST /zstack/v1/port-forwarding, a detached rule (no host
-- work), every request a distinct VIP port so that none is refused as an
-- overlap.  BENCH_VIPS lists VIP uuids, comma-separated; wrk thread 'id'
-- owns the slice id * per .. id * per + per - 1 of them and walks its
-- slice round robin, moving to the next port after each round:
--   vip  = vips[id * per + c % per]
--   port = floor(c / per) % 65535 + 1
-- so one thread makes per * 65535 distinct rules before it would repeat.
-- BENCH_PROTO (TCP by default) lets a second case use UDP ports.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

local vips = {}
for v in string.gmatch(os.getenv("BENCH_VIPS"), "[^,]+") do
   vips[#vips + 1] = v
end
local threads = tonumber(os.getenv("BENCH_THREADS"))
local per = math.floor(#vips / threads)
local proto = os.getenv("BENCH_PROTO") or "TCP"
local headers = auth_headers({ ["Content-Type"] = "application/json" })
local counter = 0

track_status()

function request()
   local vip = vips[id * per + counter % per + 1]
   local port = math.floor(counter / per) % 65535 + 1
   local body = string.format(
      '{"params":{"name":"bench-%d-%d","vipUuid":"%s",' ..
      '"vipPortStart":%d,"protocolType":"%s"}}', id, counter, vip, port,
      proto)

   counter = counter + 1
   return wrk.format("POST", "/zstack/v1/port-forwarding", headers, body)
end
