-- A run's report: what it did, what it scored, what it cost and saved against an all-Claude
-- run — as report.json (for tools), report.md (for people; also the pull request's body) and
-- a closing summary for the terminal.
--
--   local report = require "codeassist.report"
--   local doc = report.build(saved_state, ledger_totals, { prices_taken = "2026-11-01" })
--   report.markdown(doc), report.summary(doc)
local M = {}

-- Dollars with enough digits that small sums still add up as they read ($0.011 of $0.030).
local function money(usd)
  if usd == nil then return "?" end
  if usd == 0 then return "$0" end
  if math.abs(usd) < 0.01 then return ("$%.4f"):format(usd) end
  if math.abs(usd) < 1 then return ("$%.3f"):format(usd) end
  return ("$%.2f"):format(usd)
end
M.money = money

-- The order gates are shown in everywhere, as the doctor lists them: by parallel group (the
-- agent's is 0; a project's own gates default to 3, as preset.add_project_gates puts them),
-- then by name.
local function group_of(gate)
  if gate == "implement" then return 0 end
  local defaults = require("codeassist.config").GATE_DEFAULTS[gate]
  return defaults and defaults.parallel_group or 3
end
function M.gate_before(a, b)
  local ga, gb = group_of(a), group_of(b)
  if ga ~= gb then return ga < gb end
  return tostring(a) < tostring(b)
end

-- A gate result's route as the terminal's table shows it.
function M.route_cell(r)
  local route = r.provider and (require("codeassist.preset").route_label(r)
    .. (r.fallback and (" (fallback from " .. r.fallback .. ")") or ""))
  if r.kind == "measured" then route = "measured" .. (route and (", explained by " .. route) or "") end
  return route or "-"
end

local function duration(s)
  s = tonumber(s) or 0
  if s < 60 then return ("%.1f s"):format(s) end
  if s < 3600 then return ("%d min %02d s"):format(math.floor(s / 60), math.floor(s % 60)) end
  return ("%d h %02d min"):format(math.floor(s / 3600), math.floor(s % 3600 / 60))
end
M.duration = duration

local function md_cell(v)
  return (tostring(v == nil and "" or v):gsub("[\r\n]+", " "):gsub("|", "\\|"))
end

-- The report as plain data. state: the run's saved state; totals: the ledger's totals.
function M.build(state, totals, opts)
  opts = opts or {}
  totals = totals or {}
  local doc = {
    run_id = state.run_id, preset = state.preset, issue = state.issue and { number = state.issue.number, title = state.issue.title },
    branch = state.branch, base = state.base_name, target = state.target_score, score = state.last_total,
    iterations = state.iteration, seconds = state.elapsed, started_at = state.started_at, outcome = state.outcome or {},
    gates = {}, cost = {}, prices_taken = opts.prices_taken,
  }
  for _, r in ipairs(state.last_results or {}) do
    doc.gates[#doc.gates + 1] = { gate = r.gate, score = r.score, status = r.status, provider = r.provider, model = r.model,
                                  fallback = r.fallback, reason = r.reason, kind = r.kind, route = M.route_cell(r) }
  end
  local by_gate = {}
  for gate, g in pairs(totals.by_gate or {}) do
    local routes = {}
    for route, n in pairs(g.routes or {}) do
      routes[#routes + 1] = ("%s (%d)"):format(route, n)
    end
    table.sort(routes)
    by_gate[#by_gate + 1] = { gate = gate, calls = g.calls, input_tokens = g.input_tokens, output_tokens = g.output_tokens,
                              usd = g.usd, claude_usd = g.claude_usd, saved_usd = g.claude_usd - g.usd,
                              seconds = g.seconds, routes = routes }
  end
  table.sort(by_gate, function(a, b) return M.gate_before(a.gate, b.gate) end)
  doc.cost = { calls = totals.calls or 0, paid_calls = totals.paid_calls or 0, usd = totals.usd or 0,
               claude_usd = totals.claude_usd or 0, saved_usd = totals.saved_usd or 0, unpriced_calls = totals.unpriced or 0,
               input_tokens = totals.input_tokens or 0, output_tokens = totals.output_tokens or 0, by_gate = by_gate,
               replayed_calls = totals.replayed or 0, recorded_usd = totals.recorded_usd or 0 }
  return doc
end

local function outcome_line(doc)
  local o = doc.outcome
  if o.status == "done" then return ("**Done** — score %s/%s after %d iteration%s; %s"):format(doc.score, doc.target,
    doc.iterations or 0, doc.iterations == 1 and "" or "s", o.pr_url or "") end
  if o.status == "blocked" then return ("**BLOCKED** — %s"):format(o.reason or "") end
  if o.status == "ready" then return ("Quality gates: %s/%s after %d iteration%s."):format(doc.score, doc.target,
    doc.iterations or 0, doc.iterations == 1 and "" or "s") end
  return ("**%s**%s"):format(o.status or "running", o.reason and o.reason ~= o.status and (" — " .. o.reason) or "")
end

-- report.md: also the pull request's body (outcome "ready").
function M.markdown(doc)
  local lines = {}
  if doc.issue and doc.issue.number then lines[#lines + 1] = ("Closes #%s"):format(doc.issue.number) ; lines[#lines + 1] = "" end
  lines[#lines + 1] = outcome_line(doc)
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("Preset `%s`, branch `%s` from `%s`, %s."):format(md_cell(doc.preset), md_cell(doc.branch),
    md_cell(doc.base), duration(doc.seconds))
  if #doc.gates > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "| gate | score | status | route | why |"
    lines[#lines + 1] = "|---|---|---|---|---|"
    for _, g in ipairs(doc.gates) do
      local route = g.route or M.route_cell(g)
      lines[#lines + 1] = ("| %s | %s | %s | %s | %s |"):format(md_cell(g.gate), md_cell(g.score and math.floor(g.score + 0.5)),
        md_cell(g.status), md_cell(route), md_cell(g.reason))
    end
  end
  local c = doc.cost
  lines[#lines + 1] = ""
  if (c.replayed_calls or 0) > 0 and c.replayed_calls == c.calls then
    lines[#lines + 1] = ("Cost: $0 — a replay of %d recorded model calls, no model was called; the recorded run cost %s "
      .. "(all on Claude about %s)."):format(c.calls, money(c.recorded_usd), money(c.claude_usd))
  else
    lines[#lines + 1] = ("Cost: %s for %d model calls (%d to Claude); the same tokens all on Claude: %s — saved %s."):format(
      money(c.usd), c.calls, c.paid_calls, money(c.claude_usd), money(c.saved_usd))
  end
  if #c.by_gate > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "| step | calls | tokens in / out | cost | all-Claude | routes |"
    lines[#lines + 1] = "|---|---|---|---|---|---|"
    for _, g in ipairs(c.by_gate) do
      lines[#lines + 1] = ("| %s | %d | %d / %d | %s | %s | %s |"):format(md_cell(g.gate), g.calls, g.input_tokens,
        g.output_tokens, money(g.usd), money(g.claude_usd), md_cell(table.concat(g.routes, ", ")))
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("_Prices: Claude list prices of %s; local models cost nothing. The all-Claude figure prices the "
    .. "same token counts at Claude's rate (tokenizers differ, so it is an estimate)%s._"):format(tostring(doc.prices_taken),
    c.unpriced_calls > 0 and ("; %d call%s to a Claude model without a price are counted as $0"):format(c.unpriced_calls,
      c.unpriced_calls == 1 and "" or "s") or "")
  return table.concat(lines, "\n") .. "\n"
end

-- The terminal's closing lines: time, calls, cost and savings.
function M.summary(doc)
  local c = doc.cost
  local lines = {}
  lines[#lines + 1] = ("Run %s: %d iteration%s in %s; %d model calls (%d to Claude), %d tokens in, %d out"):format(
    tostring(doc.run_id), doc.iterations or 0, doc.iterations == 1 and "" or "s", duration(doc.seconds), c.calls,
    c.paid_calls, c.input_tokens, c.output_tokens)
  if (c.replayed_calls or 0) > 0 and c.replayed_calls == c.calls then
    -- nothing was spent, and "saved" would flatter the preset: say what the recorded run cost
    lines[#lines + 1] = ("Cost $0: a replay, no model was called (the recorded run cost %s; all on Claude about %s)")
      :format(money(c.recorded_usd), money(c.claude_usd))
    return lines
  end
  local pct = c.claude_usd > 0 and math.floor(c.saved_usd / c.claude_usd * 100 + 0.5) or 0
  lines[#lines + 1] = ("Cost %s; all on Claude it would have been about %s: saved %s (%d%%)"):format(money(c.usd),
    money(c.claude_usd), money(c.saved_usd), pct)
  return lines
end

return M
