-- Example 2 of docs/PRESETS.md: ollama_hybrid with a stricter idea of "done". The security
-- gate counts double in the total (a score() hook), and the run stops early when the security
-- gate is stuck — failing twice in a row without its score going up (an on_iteration() hook)
-- — instead of spending more iterations on a finding the agent cannot fix.
local preset = require "codeassist.preset"

local SECURITY_FACTOR = 2   -- security's weight, times this
local STUCK_AFTER = 2       -- failed iterations in a row, the score not rising

return preset.define{
  name = "security_weighted",
  extends = "ollama_hybrid",
  description = "ollama_hybrid; security counts double, a stuck security gate stops the run",
  target_score = 90,

  -- The total, as the built-in rule computes it (Σ weight × score / Σ weight over the gates
  -- with a weight; a gate that did not run scores 0), with security's weight doubled.
  score = function(results, ctx)
    local sum, weights = 0, 0
    for _, r in ipairs(results) do
      local weight = ctx.plan.gates[r.gate].weight or 0   -- a SKIPPED result carries no weight
      if r.gate == "security" then weight = weight * SECURITY_FACTOR end
      sum, weights = sum + weight * (r.score or 0), weights + weight
    end
    if weights == 0 then return nil end   -- nothing weighted: keep the built-in total
    return math.floor(sum / weights * 10 + 0.5) / 10
  end,

  -- After each scored iteration: return false (and why) to stop the run, BLOCKED.
  on_iteration = function(ctx)
    local h = ctx.history.security or {}
    if #h < STUCK_AFTER then return end
    for i = #h - STUCK_AFTER + 1, #h do
      if h[i].passed or h[i].status == "SKIPPED" then return end
      if i > #h - STUCK_AFTER + 1 and h[i].score > h[i - 1].score then return end   -- improving
    end
    return false, ("the security gate is stuck: it failed the last %d iterations at %s/100")
      :format(STUCK_AFTER, tostring(h[#h].score))
  end,
}
