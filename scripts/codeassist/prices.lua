-- What model calls cost, in US dollars per million tokens. Claude's list prices as Anthropic
-- publishes them; a local model costs nothing. Edit this table when the prices change (and
-- the date with them), or put a copy first on CODEASSIST_PATH.
--
--   local prices = require "codeassist.prices"
--   local usd, known = prices.cost("anthropic", "claude-sonnet-4-5-20250929", usage)
--   -- usage: {input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens}
local M = {}

M.TAKEN = "2026-11-01"   -- when these were copied from https://www.anthropic.com/pricing

-- Per million tokens. A model id matches the longest name here it starts with, so dated ids
-- (claude-sonnet-4-5-20250929) and aliases (claude-sonnet-4-5) find the same row.
M.CLAUDE = {
  ["claude-opus-4-5"]   = { input = 5,    output = 25 },
  ["claude-opus-4-1"]   = { input = 15,   output = 75 },
  ["claude-opus-4"]     = { input = 15,   output = 75 },
  ["claude-sonnet-4-5"] = { input = 3,    output = 15 },
  ["claude-sonnet-4"]   = { input = 3,    output = 15 },
  ["claude-3-7-sonnet"] = { input = 3,    output = 15 },
  ["claude-haiku-4-5"]  = { input = 1,    output = 5 },
  ["claude-3-5-haiku"]  = { input = 0.8,  output = 4 },
}

-- Prompt caching, as multiples of the input price.
M.CACHE_WRITE, M.CACHE_READ = 1.25, 0.1

-- The price row of a Claude model, or nil when it is not in the table.
function M.claude(model)
  if type(model) ~= "string" then return nil end
  local best, best_len
  for name, row in pairs(M.CLAUDE) do
    if model:sub(1, #name) == name and (not best_len or #name > best_len) then best, best_len = row, #name end
  end
  return best
end

local function n(v) return type(v) == "number" and v == v and v >= 0 and v < math.huge and v or 0 end

-- Dollars for a call: (usd, true) — or (0, true) for a local model; (nil, false) when the
-- Claude model has no price here.
function M.cost(provider, model, usage)
  if provider ~= "anthropic" then return 0, true end
  local row = M.claude(model)
  if not row then return nil, false end
  usage = usage or {}
  local tokens = n(usage.input_tokens) * row.input + n(usage.output_tokens) * row.output
    + n(usage.cache_creation_input_tokens) * row.input * M.CACHE_WRITE
    + n(usage.cache_read_input_tokens) * row.input * M.CACHE_READ
  return tokens / 1e6, true
end

return M
