-- Everything on Ollama: no cloud calls and no Anthropic key anywhere. The critical gates and
-- the agent use the configured default model (providers.ollama.model, else qwen3-coder); the
-- others follow the setup guide's mapping.
local preset = require "codeassist.preset"

return function(cfg)
  local main = cfg.providers.ollama.model or "qwen3-coder"
  local function on(model, floor) return { provider = "ollama", model = model, floor = floor, fallback = "none" } end
  return preset.define{
    name = "ollama_only",
    description = "every gate and the agent on local Ollama models",
    routes = {
      implement = on(main, "critical"),
      test = on(main, "critical"),
      security = on(main, "critical"),
      mentor = on(main, "critical"),
      build = on("qwen2.5-coder:32b", "degradable"),
      review = on("qwen3-coder", "degradable"),
      architect = on("qwq:32b", "degradable"),
      devops = on("qwen2.5-coder:32b", "degradable"),
      ux = on("qwen3-coder", "degradable"),
    },
  }(cfg)
end
