-- Example 1 of docs/PRESETS.md: ollama_hybrid, with the review gate kept on its local model
-- until that model has failed it in two iterations in a row; from then on review runs on
-- Claude for the rest of the run. Every other gate keeps ollama_hybrid's route.
--
--   codeassist doctor examples/presets/review_escalates.lua      # the routes at iteration 0
--   codeassist run examples/presets/review_escalates.lua --issue 12
local preset = require "codeassist.preset"

local ESCALATE_AFTER = 2   -- failed iterations in a row on the local model

-- Whether review has moved to Claude: worked out from the run's history each time (not kept
-- in a variable), so it survives --resume and a preset edited during the run.
local function review_on_claude(ctx)
  for _, earlier in ipairs(ctx.history.review or {}) do
    if earlier.provider == "claude" then return true end   -- once moved, it stays
  end
  return ctx.failures("review") >= ESCALATE_AFTER
end

return preset.define{
  name = "review_escalates",
  extends = "ollama_hybrid",
  description = "ollama_hybrid; review moves to Claude after two failed iterations",
  route = function(gate, ctx)
    if gate == "review" and review_on_claude(ctx) then
      return { provider = "claude" }   -- no floor given: review is optional, so degradable
    end
    -- nothing returned: the planned route (ctx.route)
  end,
}
