-- wrk script of bench/webhook_ingest.py: POST requests written out beforehand, each once.
--
--   wrk -t2 -c32 -d10s -s bench/webhook_ingest.lua http://127.0.0.1:PORT -- FOLDER THREADS [RATE]
--
-- FOLDER holds one file per wrk thread (thread-0.req, thread-1.req, ...): whole raw HTTP
-- requests (signed Shopify webhooks, each with its own webhook id and body), separated by NUL
-- bytes. wrk's Lua has no HMAC, so the Python side signs them. THREADS repeats wrk's -t (each
-- thread has its own Lua state, which can't count the others). RATE (requests/s over all the
-- threads; absent or 0: as fast as the server answers) paces the requests wrk2-style on a fixed
-- schedule: each request takes the next slot of its thread's schedule and waits for it, so the
-- server sees a steady arrival rate while latencies are measured from the send. `done` prints
-- one line, `WRK-RESULT {json}`, for the Python side.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long sec; long nsec; } i12_ingest_timespec;
int clock_gettime(int clock, i12_ingest_timespec *now);
]])
local clock = ffi.new("i12_ingest_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.sec) * 1000 + tonumber(clock.nsec) / 1e6
end

local threads = {}

function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

local prepared, next_request, slot, interval = {}, 0, nil, 0
bad, reused = 0, 0 -- globals: `done` reads them from each thread

function init(args)
  local file = assert(io.open(args[1] .. "/thread-" .. number .. ".req", "rb"))
  local data = file:read("*a")
  file:close()
  for raw in data:gmatch("([^%z]+)%z") do
    prepared[#prepared + 1] = raw
  end
  local rate = tonumber(args[3] or "0")
  if rate > 0 then
    interval = tonumber(args[2]) / rate * 1000 -- ms between two requests of this thread
  end
end

function request()
  next_request = next_request + 1
  if next_request > #prepared then -- more than written out: a repeat, counted as a failure
    next_request, reused = 1, reused + 1
  end
  return prepared[next_request]
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"accepted"', 1, true) then
    bad = bad + 1
  end
end

function delay()
  if interval == 0 then
    return 0
  end
  local now = now_ms()
  slot = (slot or now) + interval -- the next free slot of the schedule, late or not
  return math.max(0, math.floor(slot - now))
end

function done(summary, latency, requests)
  local total_bad, total_reused = 0, 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
    total_reused = total_reused + thread:get("reused")
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %d, "seconds": %.6f, "p50": %d, "p90": %d, "p99": %d, '
      .. '"p999": %d, "max": %d, "bad": %d, "reused": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, total_bad, total_reused,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout
  ))
end
