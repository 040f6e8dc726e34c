-- Example 3 of docs/PRESETS.md: everything on local models, for a pool of Ollama servers.
-- The agent and the required gates run on the configured model, critical (no fallback: there
-- is nothing stronger to go to); each optional gate has a smaller model of its own that falls
-- back to another local one, and a smaller prompt budget (context) so it loads faster and fits
-- beside the others on one GPU. No Anthropic key is needed anywhere.
--
-- The pool is the config's business, never the preset's (.claude/autonomous.yml):
--   providers:
--     default: ollama
--     ollama:
--       enabled: true
--       base_url: [http://gpu-a:11434, http://gpu-b:11434]   # a server that is down is skipped
--       model: qwen3-coder
--       vram_gb: 24
local preset = require "codeassist.preset"

-- A function of the config: it sees the loaded .claude/autonomous.yml (a copy; keys only as
-- "set"), so the agent's model follows providers.ollama.model.
return function(cfg)
  local main_model = cfg.providers.ollama.model or "qwen3-coder"
  local main = { provider = "ollama", model = main_model, floor = "critical", fallback = "none" }

  -- a gate's own model, handing over to a second local model when it cannot be used
  local function local_pair(model, second)
    return { provider = "ollama", model = model, floor = "degradable",
             fallback = { provider = "ollama", model = second, fallback = "none" } }
  end

  return preset.define{
    name = "all_local",
    description = "every gate on local models, with local fallbacks and smaller contexts",
    routes = {
      implement = main, test = main, security = main, mentor = main,
      build = local_pair("qwen2.5-coder:32b", main_model),
      review = local_pair("codestral:22b", main_model),
      architect = local_pair("qwq:32b", "deepseek-coder-v2:16b"),
      devops = local_pair("deepseek-coder-v2:16b", "codestral:22b"),
      ux = local_pair("deepseek-coder-v2:16b", "codestral:22b"),
    },
    -- tokens each gate's prompt may take (the defaults are 32768 and 16384): less KV cache,
    -- so qwq:32b fits a 24 GB GPU whole
    gates = {
      review = { context = 16384 },
      architect = { context = 16384 },
      devops = { context = 8192 },
      ux = { context = 8192 },
    },
  }
end
