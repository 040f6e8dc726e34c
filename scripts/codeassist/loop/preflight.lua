-- Before anything is spent: what the doctor found, said once per problem with what to do, and
-- whether the run can reach its target at all.
local errors = require "codeassist.errors"
local render = require "codeassist.loop.render"

local M = {}

-- What the doctor found, before anything is spent: problems grouped by what to do about them.
-- A required gate that cannot be served stops the run (exit 1); an optional one scores 0, and
-- when that leaves the target out of reach the run stops too; a measured gate still runs; a
-- gate that will use its fallback is announced.
function M.check(state, report, opts, bus)
  local plan = state.plan
  local groups, order = {}, {}
  local function add(level, text, remedy, gate)
    local key = level .. "\0" .. text .. "\0" .. (remedy or "")
    if not groups[key] then
      groups[key] = { level = level, text = text, remedy = remedy, gates = {} }
      order[#order + 1] = key
    end
    table.insert(groups[key].gates, gate)
  end
  local blocking = 0
  for _, e in ipairs(report.gates) do
    local first = e.problems[1] or {}
    if e.status == "fail" then
      if e.measured then   -- the doctor was given the run's gates (state.gates)
        add("warn", (first.message or "unusable") .. " (a measured gate: it runs, but a failure will not be explained)",
          first.remedy, e.gate)
      elseif e.required then
        blocking = blocking + 1
        add("bad", first.message or "unusable", first.remedy, e.gate)
      else
        add("warn", (first.message or "unusable") .. " (optional: it will score 0)", first.remedy, e.gate)
      end
    elseif e.status == "fallback" and e.fallback then
      add("warn", ("%s; it will use its fallback %s %s"):format(first.message or "unusable", e.fallback.provider,
        tostring(e.fallback.model)), nil, e.gate)
    end
  end
  for _, w in ipairs(report.sandbox and report.sandbox.problems or {}) do
    if w.severity == "error" then
      blocking = blocking + 1
      add("bad", w.message, w.remedy, "agent sandbox")
    end
  end
  -- a dry run has printed the doctor's whole report, these problems included
  for _, key in ipairs(opts.dry_run and {} or order) do
    local g = groups[key]
    render.note(bus, ("%s: %s%s"):format(table.concat(g.gates, ", "), g.text, g.remedy and (" — " .. g.remedy) or ""), g.level)
  end
  local name = tostring(opts.preset or plan.name)
  if blocking > 0 then
    errors.goal("a required route cannot be served (see above, or `codeassist doctor %s`)", name)
  end
  local best, unserved = require("codeassist.doctor").best_total(report.gates)   -- as the doctor decides
  if best < plan.target_score then
    errors.goal("the target %s cannot be reached: %s cannot be served and will score 0, so the best total is %s — "
      .. "fix their routes (see above, or `codeassist doctor %s`) or lower the target", plan.target_score,
      table.concat(unserved, ", "), best, name)
  end
end

return M
