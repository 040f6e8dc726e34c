-- Scoring an iteration: each gate 0-100; the total is the weight-averaged score of the gates
-- with a weight; a required gate passes at its threshold (gates.<name>.thresholds.pass,
-- default 80). A gate that did not run (skipped after a required failure, timed out, no
-- verdict) counts 0. The preset's score(results, ctx) hook may replace the total.
local M = {}

M.THRESHOLD = 80

function M.threshold(gate)
  return gate and gate.thresholds and tonumber(gate.thresholds.pass) or M.THRESHOLD
end

-- Whether a result passes its gate: required gates at their threshold; others always pass,
-- but below the threshold they are marked as a warning.
function M.judge(result, gate)
  local t = M.threshold(gate)
  result.threshold = t
  result.weight, result.required = tonumber(gate.weight) or 0, gate.required == true
  result.passed = result.score ~= nil and result.score >= t
  result.blocking = gate.required == true and not result.passed
  return result
end

-- {total, weight, failed_required = {names}, rules = text}
function M.total(results, plan)
  local sum, weights, failed = 0, 0, {}
  for _, r in ipairs(results) do
    local gate = plan.gates[r.gate] or {}
    local w = tonumber(gate.weight) or 0
    if w > 0 then
      sum = sum + w * (r.score or 0)
      weights = weights + w
    end
    if r.blocking then failed[#failed + 1] = r.gate end
  end
  local total = weights > 0 and math.floor(sum / weights * 10 + 0.5) / 10 or 0
  return { total = total, weight = weights, failed_required = failed,
           rules = ("total = Σ(weight × score) / Σ weight over weighted gates; a required gate passes at "
             .. "its threshold (default %d); a gate that did not run scores 0"):format(M.THRESHOLD) }
end

return M
