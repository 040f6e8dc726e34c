-- Consumes an SSE stream event by event; the bench times the whole process.
--   codeassist run tests/bench/sse_consume.lua URL strings|json|memory
-- strings: events handed to Lua as strings; json: each also decoded; memory: the events are
-- collected first, then only decoding them from memory is timed (printed in seconds).
local http = require "codeassist.http"
local cjson = require "cjson"
local clock = require "codeassist.clock"

local url, mode = arg[1], arg[2] or "strings"
local res = assert(http.request{ url = url, stream = "sse" })
local n = 0
if mode == "strings" then
  for _ in res:events() do n = n + 1 end
elseif mode == "json" then
  local decode = cjson.decode
  for data in res:events() do decode(data); n = n + 1 end
else
  local all = {}
  for data in res:events() do n = n + 1; all[n] = data end
  local decode = cjson.decode
  local t0 = clock.monotonic()
  for i = 1, n do decode(all[i]) end
  io.stderr:write(("decode_seconds=%.6f\n"):format(clock.monotonic() - t0))
end
assert(not res.err, res.err and res.err.message)
io.stderr:write(("events=%d\n"):format(n))
