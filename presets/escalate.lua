-- ollama_hybrid, escalating: a gate served by a local model moves to Claude after two failed
-- local attempts in a row, and back once it passes again. An example of a route(gate, ctx)
-- hook: copy it and change the rule (a count, a gate list, a file pattern in ctx.changed_files).
local preset = require "codeassist.preset"

local ESCALATE_AFTER = 2

return preset.define{
  name = "escalate",
  extends = "ollama_hybrid",
  description = "ollama_hybrid; a local gate moves to Claude after two failed attempts",
  route = function(gate, ctx)
    if ctx.route and ctx.route.provider == "ollama" and ctx.failures(gate) >= ESCALATE_AFTER then
      return { provider = "claude" }   -- its floor as the gate's: critical when required
    end
  end,
}
