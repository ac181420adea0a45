-- common.lua: shared by every case of tests/bench/run.  Loaded with
-- dofile() by each case script, in wrk's main Lua state and in each
-- thread's.  Provides the session header, the thread ids, an optional
-- count of answers by HTTP status and a done() that prints the lines the
-- run script parses:
--   BENCH <case> <requests> <seconds> <req/s> <p50 ms> <p99 ms> <max ms>
--         <non-2xx> <connect> <read> <write> <timeout errors>
--   STATUS <case> <status> <count>      (with track_status() only)

session = os.getenv("BENCH_SESSION")

function auth_headers(h)
   h = h or {}
   if session and session ~= "" then
      h["Authorization"] = "OAuth " .. session
   end
   return h
end

-- Gives each wrk thread a global 'id', 0, 1, ...  (setup() runs in the
-- main state before the thread starts.)
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   threads[#threads + 1] = thread
end

-- Makes each thread count its answers by status, for done() to print.
-- Costs wrk a Lua call per answer: use it where the server is the limit.
function track_status()
   statuses = {}
   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local name = os.getenv("BENCH_CASE") or "?"
   local e = summary.errors
   local secs = summary.duration / 1e6
   local total = {}

   io.write(string.format("BENCH %s %d %.3f %.1f %.3f %.3f %.3f %d %d %d %d "
                          .. "%d\n", name, summary.requests, secs,
                          summary.requests / secs,
                          latency:percentile(50) / 1000,
                          latency:percentile(99) / 1000,
                          latency.max / 1000, e.status, e.connect, e.read,
                          e.write, e.timeout))
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses") or {}) do
         total[status] = (total[status] or 0) + n
      end
   end
   for status, n in pairs(total) do
      io.write(string.format("STATUS %s %d %d\n", name, status, n))
   end
end
