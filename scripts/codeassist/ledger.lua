-- The ledger: one line per model call — gate, iteration, provider, model, endpoint, tokens,
-- seconds, dollars, and what Claude would have cost for the same tokens — appended to
-- ledger.jsonl, with running totals for budgets, savings and reports.
--
--   local ledger = require("codeassist.ledger").open(path, { claude_model = "claude-sonnet-4-5" })
--   ledger:record{ gate = "review", iteration = 1, provider = "ollama", model = "qwen3-coder",
--                  endpoint = "http://gpu:11434", usage = {input_tokens = 900, output_tokens = 80}, seconds = 2.1 }
--   ledger.totals  --> {calls, paid_calls, usd, claude_usd, saved_usd, unpriced, by_gate = {...}}
--   ledger:paid_calls_since(t)   -- Claude calls at or after wall-clock time t (calls-per-hour budgets)
--
-- The counterfactual prices the same token counts at the Claude model the config names: the
-- tokenizers differ, so it is an estimate, and the reports say so.
local prices = require "codeassist.prices"
local json = require "codeassist.json"
local fs = require "codeassist.fs"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"

local M = {}

local Ledger = {}
Ledger.__index = Ledger

-- A token count as a ledger keeps it: a whole number >= 0 (anything else from a server is 0).
local function count(v) return type(v) == "number" and v == v and v >= 0 and v < math.huge and math.floor(v) or 0 end

local function empty_totals()
  return { calls = 0, paid_calls = 0, usd = 0, claude_usd = 0, saved_usd = 0, unpriced = 0,
           input_tokens = 0, output_tokens = 0, seconds = 0, by_gate = {}, replayed = 0, recorded_usd = 0 }
end

-- Adds one entry (as written to the file) to the totals.
local function add(totals, e)
  totals.calls = totals.calls + 1
  totals.input_tokens = totals.input_tokens + count(e.input_tokens)
  totals.output_tokens = totals.output_tokens + count(e.output_tokens)
  totals.seconds = totals.seconds + (tonumber(e.seconds) or 0)
  if e.provider == "anthropic" and not e.replayed then totals.paid_calls = totals.paid_calls + 1 end
  if e.usd == nil then totals.unpriced = totals.unpriced + 1 end
  totals.usd = totals.usd + (tonumber(e.usd) or 0)
  totals.claude_usd = totals.claude_usd + (tonumber(e.claude_usd) or tonumber(e.usd) or 0)
  totals.saved_usd = totals.claude_usd - totals.usd
  if e.replayed then
    totals.replayed = totals.replayed + 1
    totals.recorded_usd = totals.recorded_usd + (tonumber(e.recorded_usd) or 0)
  end
  local g = totals.by_gate[e.gate or "?"]
  if not g then
    g = { calls = 0, input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, cache_write_tokens = 0, usd = 0,
          claude_usd = 0, recorded_usd = 0, seconds = 0, routes = {} }
    totals.by_gate[e.gate or "?"] = g
  end
  g.calls = g.calls + 1
  g.input_tokens = g.input_tokens + count(e.input_tokens)
  g.output_tokens = g.output_tokens + count(e.output_tokens)
  g.cache_read_tokens = g.cache_read_tokens + count(e.cache_read_tokens)
  g.cache_write_tokens = g.cache_write_tokens + count(e.cache_write_tokens)
  g.usd = g.usd + (tonumber(e.usd) or 0)
  if e.replayed then g.recorded_usd = g.recorded_usd + (tonumber(e.recorded_usd) or 0) end
  g.claude_usd = g.claude_usd + (tonumber(e.claude_usd) or tonumber(e.usd) or 0)
  g.seconds = g.seconds + (tonumber(e.seconds) or 0)
  local route = require("codeassist.preset").route_label(e)   -- as people read it: "claude …"
  g.routes[route] = (g.routes[route] or 0) + 1
end

-- The totals of a ledger file, read only; with the wall-clock times of its paid calls.
-- nil and the failure when the file cannot be read.
function M.read(path)
  local text, err = fs.read(path)
  if not text then return nil, err end
  local totals, paid_times = empty_totals(), {}
  for line in text:gmatch("[^\n]+") do
    local e = json.decode(line)
    if type(e) == "table" then   -- a line cut by a crash is not a call
      add(totals, e)
      if e.provider == "anthropic" and not e.replayed and tonumber(e.time) then paid_times[#paid_times + 1] = tonumber(e.time) end
    end
  end
  return totals, paid_times
end

-- Opens (or creates) a ledger file; an existing one is read back into the totals (a resumed
-- run keeps counting where it stopped). opts: {claude_model, append = fn(path, line)}.
function M.open(path, opts)
  errors.argcheck(type(path) == "string", "ledger.open: give the ledger file's path")
  opts = opts or {}
  local totals, paid_times = M.read(path)
  local self = setmetatable({ path = path, claude_model = opts.claude_model or "claude-sonnet-4-5",
                              totals = totals or empty_totals(), paid_times = paid_times or {} }, Ledger)
  local f, err = io.open(path, "a")
  if not f then errors.goal("cannot write the ledger %s: %s", path, tostring(err)) end
  self.file = f
  return self
end

-- Records one model call. call: {gate, iteration, provider, model, endpoint, usage, seconds,
-- ok, replayed}. A replayed call (--replay) spent nothing: its dollars are 0 and what it cost
-- when it was recorded is kept as recorded_usd. Returns the entry written.
function Ledger:record(call)
  local usage = call.usage or {}
  local usd = prices.cost(call.provider, call.model, usage)
  local claude_usd = call.provider == "anthropic" and usd or prices.cost("anthropic", self.claude_model, usage)
  local recorded_usd
  if call.replayed then recorded_usd, usd = usd, 0 end
  local e = {
    time = clock.wall(), gate = call.gate, iteration = call.iteration, provider = call.provider, model = call.model,
    endpoint = call.endpoint, input_tokens = count(usage.input_tokens), output_tokens = count(usage.output_tokens),
    cache_read_tokens = count(usage.cache_read_input_tokens), cache_write_tokens = count(usage.cache_creation_input_tokens),
    seconds = tonumber(call.seconds), usd = usd, claude_usd = claude_usd, ok = call.ok ~= false,
    replayed = call.replayed or nil, recorded_usd = recorded_usd,
  }
  add(self.totals, e)
  if e.provider == "anthropic" and not e.replayed then self.paid_times[#self.paid_times + 1] = e.time end
  local line = json.encode(e)
  local ok, err = self.file:write(line, "\n")
  if not ok then errors.goal("cannot write the ledger %s: %s — the run stops (its state so far is kept)", self.path, tostring(err)) end
  self.file:flush()
  return e
end

-- Claude calls at or after wall-clock time t.
function Ledger:paid_calls_since(t)
  local n = 0
  for i = #self.paid_times, 1, -1 do
    if self.paid_times[i] < t then break end
    n = n + 1
  end
  return n
end

-- The wall-clock time the oldest paid call of the last hour leaves the window.
function Ledger:window_frees_at(per_hour)
  local first = #self.paid_times - per_hour + 1
  return first >= 1 and self.paid_times[first] + 3600 or nil
end

function Ledger:close()
  if self.file then self.file:close(); self.file = nil end
end

return M
