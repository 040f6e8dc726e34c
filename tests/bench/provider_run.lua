-- One timed run for tests/bench/provider.lua, in a fresh process so no run inherits another's
-- compiled traces or heap:   codeassist run tests/bench/provider_run.lua plain|provider N
-- Prints seconds=S, from sending the request to the last event.
local http = require "codeassist.http"
local anthropic = require "codeassist.providers.anthropic"
local cjson = require "cjson"
local clock = require "codeassist.clock"

local mode, n = arg[1], assert(tonumber(arg[2]))
local url = ("%s/_sim/bench/sse?shape=anthropic&events=%d"):format(assert(os.getenv("SIM_URL")), n)

-- "w0 w1 ... w(n-1) ": the text the provider must have put together.
local function text_length(count)
  local len, digits, from = 0, 1, 0
  while from < count do
    local to = math.min(count, 10 ^ digits)
    len = len + (to - from) * (digits + 2)
    from, digits = to, digits + 1
  end
  return len
end

local t0 = clock.monotonic()
local res = assert(http.request{ url = url, stream = "sse" })
if mode == "plain" then
  local decode, count = cjson.decode, 0
  for data in res:events() do decode(data); count = count + 1 end
  assert(not res.err and count == n + 5, res.err and res.err.message or count)
else
  local msg = assert(anthropic.read_stream(res))
  local text = msg.content[1].text
  assert(#text == text_length(n) and text:sub(1, 6) == "w0 w1 " and msg.stop_reason == "end_turn",
         "the provider's text is wrong")
end
print(("seconds=%.6f"):format(clock.monotonic() - t0))
