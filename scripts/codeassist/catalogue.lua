-- What we know about models, as data a user can read and a preset can extend: capability
-- patterns, size tiers, and the setup guide's recommendations per GPU size. The grammar of
-- model names, sizes and versions stays in C (codeassist.models_core).
--
--   local catalogue = require "codeassist.catalogue"
--   catalogue.capability("qwen3-coder:latest", "qwen3moe")   --> "coding"
--   catalogue.tier(30.5e9)                                    --> "large"
local M = {}

M.GB = 1024 ^ 3   -- sizes and VRAM are in GiB, as Ollama and nvidia-smi show them

-- By the real parameter count (137M is small, whatever the name says).
M.TIERS = {
  { below = 7e9, tier = "small" },
  { below = 20e9, tier = "medium" },
  { tier = "large" },
}

-- Name patterns first (Lua patterns, matched case-insensitively), in this order: the
-- original runner's list, so a qwq built on the qwen2 family is still "reasoning".
M.NAME_PATTERNS = {
  { "deepseek%-r1", "reasoning" },
  { "qwq", "reasoning" },
  { "codestral", "coding" },
  { "deepseek%-coder", "coding" },
  { "qwen.*coder", "coding" },
  { "codellama", "coding" },
  { "starcoder", "coding" },
}

-- Then the family /api/tags reports (details.family).
M.FAMILIES = {
  qwen = "coding", qwen2 = "coding", qwen3 = "coding", qwen3moe = "coding",
  ["qwen3-coder"] = "coding", ["qwen2.5-coder"] = "coding", codellama = "coding",
  ["deepseek-coder"] = "coding", deepseek2 = "coding", starcoder = "coding", codestral = "coding",
  llama = "reasoning", mistral = "reasoning", minimaxm2 = "reasoning",
  phi = "fast", phi3 = "fast", gemma = "fast", gemma3 = "fast", tinyllama = "fast",
}

-- Names of models that call tools (Ollama's "tools" capability), for when the server cannot be
-- asked (/api/show says it when it can): init must not put a tools gate on codestral.
M.TOOL_CALLERS = { "qwen3", "qwen2%.5", "qwq", "llama3%.[1-9]", "llama4", "gpt%-oss", "mistral",
                   "mixtral", "devstral", "command%-r", "granite3", "hermes3", "firefunction" }

-- The Ollama setup guide's "Model Recommendations by GPU": {name, GB of VRAM, use}.
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

-- "small" | "medium" | "large", or "unknown" without a count.
function M.tier(parameters)
  if type(parameters) ~= "number" or parameters < 0 then return "unknown" end
  for _, t in ipairs(M.TIERS) do
    if not t.below or parameters < t.below then return t.tier end
  end
end

-- "coding" | "reasoning" | "fast" | "general", from the name, else the family.
function M.capability(name, family)
  if type(name) == "string" then
    local lower = name:lower()
    for _, p in ipairs(M.NAME_PATTERNS) do
      if lower:find(p[1]) then return p[2] end
    end
  end
  if type(family) == "string" then return M.FAMILIES[family:lower()] or "general" end
  return "general"
end

-- Whether a model of this name calls tools, as far as its name says.
function M.calls_tools(name)
  if type(name) ~= "string" then return false end
  local lower = name:lower()
  for _, p in ipairs(M.TOOL_CALLERS) do
    if lower:find(p) then return true end
  end
  return false
end

-- The recommendation table for a GPU with this many GB.
function M.recommendations(vram_gb)
  for _, r in ipairs(M.RECOMMENDATIONS) do
    if vram_gb >= r.min_gb then return r end
  end
end

return M
