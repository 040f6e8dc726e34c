-- Claude for the critical gates and the agent, local Ollama models for the rest, with the
-- gate->model mapping of the setup guide. A local gate whose model is not usable falls back
-- to Claude; a Claude gate never drops to a weaker model.
local preset = require "codeassist.preset"

local claude = { provider = "claude", floor = "critical" }
local function local_model(model)
  return { provider = "ollama", model = model, floor = "degradable", fallback = "claude" }
end

return preset.define{
  name = "ollama_hybrid",
  description = "Claude for test, security, mentor and the agent; Ollama for the rest",
  routes = {
    implement = claude,
    test = claude,
    security = claude,
    mentor = claude,
    build = local_model("qwen2.5-coder:32b"),
    review = local_model("qwen3-coder"),
    architect = local_model("qwq:32b"),
    devops = local_model("qwen2.5-coder:32b"),
    ux = local_model("qwen3-coder"),
  },
}
