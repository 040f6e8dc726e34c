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
  local groups, order, stopped = {}, {}, false   -- stopped: a gate or the sandbox stops the run
  local function add(level, text, remedy, gate)
    stopped = stopped or level == "bad"
    local key = level .. "\0" .. text .. "\0" .. (remedy or "")
    if not groups[key] then
      groups[key] = { level = level, text = text, remedy = remedy, gates = {} }
      order[#order + 1] = key
    end
    table.insert(groups[key].gates, gate)
  end
  for _, e in ipairs(report.gates) do
    local first = e.problems[1] or {}
    if e.effect == "measured" then
      add("warn", (first.message or "unusable") .. " (a measured gate: it runs, but a failure will not be explained)",
        first.remedy, e.gate)
    elseif e.effect == "stops" then
      add("bad", first.message or "unusable", first.remedy, e.gate)
    elseif e.effect == "scores_zero" then
      add("warn", (first.message or "unusable") .. " (optional: it will score 0)", first.remedy, e.gate)
    elseif e.effect == "fallback" and e.fallback then
      add("warn", ("%s; it will use its fallback %s %s"):format(first.message or "unusable", e.fallback.provider,
        tostring(e.fallback.model)), nil, e.gate)
    end
  end
  for _, w in ipairs(report.sandbox and report.sandbox.problems or {}) do
    if w.severity == "error" then
      add("bad", w.message, w.remedy, "agent sandbox")
    end
  end
  -- a dry run has printed the doctor's whole report, these problems included
  for _, key in ipairs(opts.dry_run and {} or order) do
    local g = groups[key]
    render.note(bus, ("%s: %s%s"):format(table.concat(g.gates, ", "), g.text, g.remedy and (" — " .. g.remedy) or ""), g.level)
  end
  if report.ok then return end
  -- the doctor's verdict (report.ok): something stops the run, or the target is out of reach
  local name = tostring(opts.preset or plan.name)
  local target
  for _, w in ipairs(report.warnings) do if w.check == "target" then target = w end end
  if target and not stopped then
    errors.goal("%s — fix their routes (see above, or `codeassist doctor %s`) or lower the target", target.message, name)
  end
  errors.goal("a required route cannot be served (see above, or `codeassist doctor %s`)", name)
end

return M
