-- Everything on Ollama: no cloud calls and no Anthropic key anywhere. The critical gates and
-- the agent use the configured model (providers.ollama.model, else qwen3-coder); the others
-- follow the setup guide's mapping. Nothing falls back: there is nowhere else to go.
local preset = require "codeassist.preset"

local main = { provider = "ollama", default_model = "qwen3-coder", floor = "critical", fallback = "none" }
local function on(model) return { provider = "ollama", model = model, floor = "degradable", fallback = "none" } end

return preset.define{
  name = "ollama_only",
  description = "every gate and the agent on local Ollama models",
  routes = {
    implement = main,
    test = main,
    security = main,
    mentor = main,
    build = on("qwen2.5-coder:32b"),
    review = on("qwen3-coder"),
    architect = on("qwq:32b"),
    devops = on("qwen2.5-coder:32b"),
    ux = on("qwen3-coder"),
  },
}
