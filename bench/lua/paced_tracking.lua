-- wrk script: tracking batches at a fixed rate (bench_api.py --lag-client wrk). Every command is
-- a new update (its own sequence number, value and update_timestamp), as in bench_api.py's
-- tracking_body, so the applier does real work. Arguments after "--":
--   threads rate(commands/s) batch customers t0(UNIX seconds) run
-- Each thread paces its requests against the wall clock (a connection sends when its thread is
-- due; behind schedule it sends at once), so the rate holds while latency stays below the period.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } timespec;
int clock_gettime(int clk_id, timespec *tp);
]]
local function now()
  local t = ffi.new("timespec")
  ffi.C.clock_gettime(1, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9
end
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local nthreads, rate, batch, customers, t0, run = 2, 100, 50, 1000, 0, "x"
local sent, start
function init(args)
  nthreads = tonumber(args[1]); rate = tonumber(args[2]) / tonumber(args[3]) / nthreads
  batch = tonumber(args[3]); customers = tonumber(args[4]); t0 = tonumber(args[5]); run = args[6]
  sent = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function delay()
  if start == nil then start = now() end
  local due = start + sent / rate - now()
  if due <= 0 then return 0 end
  return due * 1000
end
function request()
  local base = (sent * nthreads + (tid - 1)) * batch
  sent = sent + 1
  local parts = {}
  for j = 0, batch - 1 do
    local s = base + j
    parts[#parts + 1] = string.format(
      '{"name":"customers","command_id":%d,"data":{"customer_ids":{"registered":"user%d"},"properties":{"prop_0":"%s seq %d","last_seen_app":"bench"},"update_timestamp":%.6f}}',
      s, s % customers + 1, run, s, t0 + s * 1e-6)
  end
  return wrk.format(nil, nil, nil, '{"commands":[' .. table.concat(parts, ",") .. ']}')
end
