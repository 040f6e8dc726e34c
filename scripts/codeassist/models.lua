-- `codeassist models [--vram GB]`: what the Ollama server has (size, capability, tier), and
-- the setup guide's recommendations for that much GPU memory — installed or with the
-- `ollama pull` line.
local http = require "codeassist.http"
local models = require "codeassist.models_core"
local term = require "codeassist.term"

local M = {}

local GB = 1024 ^ 3

-- reference/ollama-setup.md, "Model Recommendations by GPU".
M.RECOMMENDATIONS = {
  { min_gb = 24, label = "RTX 3090 / RTX 4090 (24GB)", models = {
    { "qwen3-coder", 18, "Agentic coding, 256K context" },
    { "qwen2.5-coder:32b", 18, "Fast code completion" },
    { "qwq:32b", 20, "Reasoning + coding" },
    { "deepseek-coder-v2:16b", 10, "GPT-4 level coding" },
    { "codestral:22b", 13, "IDE/FIM, 80+ langs" } } },
  { min_gb = 10, label = "RTX 3080 / RTX 4080 (10-16GB)", models = {
    { "deepseek-coder-v2:16b", 10, "GPT-4 level coding" },
    { "codestral:22b", 13, "IDE/FIM, 80+ langs" },
    { "qwen2.5-coder:14b", 9, "Code completion" } } },
  { min_gb = 0, label = "RTX 3070 / Consumer (8GB)", models = {
    { "qwen2.5-coder:7b", 5, "Code completion" },
    { "deepseek-coder:6.7b", 4, "Coding" },
    { "codellama:7b", 4, "Coding" } } },
}

function M.recommendations(vram_gb)
  for _, r in ipairs(M.RECOMMENDATIONS) do
    if vram_gb >= r.min_gb then return r end
  end
end

function M.main(opts)
  local config = require "codeassist.config"
  local cfg = config.load{ path = opts.config ~= config.DEFAULT_PATH and opts.config or nil }
  local color = term.color("stdout")
  local function mark(ok) return color and (ok and "\27[32m✓\27[0m" or "\27[33m·\27[0m") or (ok and "✓" or "-") end
  local base = cfg.providers.ollama.base_url
  base = (type(base) == "table" and base[1] or base):gsub("/+$", "")
  local t = opts.timeout or 5
  local tags, err = http.json(base .. "/api/tags", { timeout = { connect = t, first_byte = t, total = 2 * t } })
  local installed = {}
  if not tags then
    io.stdout:write(("✗ Could not list models at %s: %s\n"):format(base, err.message))
  else
    print(("Ollama at %s: %d models"):format(base, #(tags.models or {})))
    for _, m in ipairs(tags.models or {}) do
      local d = m.details or {}
      local params = models.parameters(d.parameter_size)
      installed[#installed + 1] = m.name
      print(("  %-32s %7s %7.1fGB  %-9s %s"):format(m.name, tostring(d.parameter_size), (m.size or 0) / GB,
        models.capability(m.name, d.family), models.tier(params)))
    end
  end
  local vram = opts.vram_gb or cfg.providers.ollama.vram_gb or 24
  local rec = M.recommendations(vram)
  print()
  print(("Recommended for %gGB of VRAM — %s:"):format(vram, rec.label))
  local missing = {}
  for _, r in ipairs(rec.models) do
    local have = models.match(r[1], installed)
    print(("  %s %-24s %3dGB  %s%s"):format(mark(have), r[1], r[2], r[3], have and ("  (installed as " .. have .. ")") or ""))
    if not have then missing[#missing + 1] = r[1] end
  end
  if #missing > 0 then
    print()
    print("To install the missing ones:")
    for _, name in ipairs(missing) do print("  ollama pull " .. name) end
  end
  return tags and 0 or 1
end

return M
