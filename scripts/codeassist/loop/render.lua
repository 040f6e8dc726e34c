-- How the loop reads as text: the plan, each iteration's gate table with the rules, every
-- switch of route with its reason, the outcome. Formats for codeassist.events text sinks.
local tty = require "codeassist.tty"
local report = require "codeassist.report"

local M = {}

local printable = tty.printable

local function banner(ev, p)
  local lines = {
    p.bold("codeassist run") .. " — preset " .. printable(ev.preset) .. (ev.extends and (" (extends " .. printable(ev.extends) .. ")") or ""),
    ("Issue:  %s%s"):format(ev.issue.number and ("#" .. ev.issue.number .. " ") or "", printable(ev.issue.title or "")),
    ("Branch: %s (from %s)"):format(printable(ev.branch), printable(ev.base)),
    ("Target: score %s in at most %s iterations; platform %s"):format(ev.target, ev.max_iterations,
      ev.platform or "none (a local issue file)"),
  }
  local rows = { { "GATE", "WEIGHT", "REQ", "GROUP", "ROUTE", "DEFINED IN" } }   -- the gate's file, not its route's origin
  for _, g in ipairs(ev.gates) do
    local route = g.route or "?"
    if g.measured then route = "measured" .. (g.route and (", explained by " .. g.route) or "") end
    rows[#rows + 1] = { g.name, tostring(g.weight), g.required and "yes" or "no", tostring(g.group), route,
      printable(((g.source or "built-in"):gsub("^.*/(%.codeassist/gates/)", "%1"))) }
  end
  lines[#lines + 1] = ""
  for _, l in ipairs(tty.columns(rows, "  ")) do lines[#lines + 1] = l end
  if ev.measured then
    lines[#lines + 1] = ""
    lines[#lines + 1] = ("Measured: build %s; test %s"):format(
      ev.measured.build and ("`" .. printable(ev.measured.build) .. "`") or "(none found)",
      ev.measured.test and ("`" .. printable(ev.measured.test) .. "`") or "(none found)")
  end
  return table.concat(lines, "\n")
end

local function iteration_start(ev, p)
  return ("\n%s"):format(p.bold(("Iteration %d/%d"):format(ev.iteration, ev.max)))
end

local function implement_done(ev, p)
  local r = ev.result
  local mark = r.stop_reason == "done" and p.ok or p.warn
  return "  " .. mark(("implement: %s after %d turn%s (%s, %d+%d tokens)%s"):format(r.stop_reason, r.turns,
    r.turns == 1 and "" or "s", tostring(ev.route), r.usage.input_tokens, r.usage.output_tokens,
    r.error and (": " .. printable(r.error)) or ""))
end

local STATUS_MARK = { PASS = "ok", WARN = "warn", FAIL = "bad", TIMEOUT = "bad", ERROR = "bad", SKIPPED = "warn" }

local function gate_table(ev, p)
  local rows = { { "GATE", "SCORE", "STATUS", "ROUTE", "WHY" } }
  for _, r in ipairs(ev.results) do
    rows[#rows + 1] = { r.gate, r.score and tostring(math.floor(r.score + 0.5)) or "-", r.status, report.route_cell(r),
      printable(r.reason or "") }
  end
  local lines = tty.columns(rows, "  ")
  for i = 2, #lines do
    local r = ev.results[i - 1]
    lines[i] = lines[i]:gsub(r.status, function(s) return (p[STATUS_MARK[s] == "ok" and "green" or STATUS_MARK[s] == "bad" and "red" or "yellow"])(s) end, 1)
  end
  local t = ev.total
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("  Score: %s/%s%s"):format(t.total, ev.target,
    #t.failed_required > 0 and ("   required gates failing: " .. table.concat(t.failed_required, ", ")) or "")
  lines[#lines + 1] = "  Rules: " .. t.rules
  if ev.iteration == 1 then   -- each gate's rule once; they do not change between iterations
    for _, r in ipairs(ev.results) do
      if r.rule then lines[#lines + 1] = ("    %s: %s"):format(r.gate, r.rule) end
    end
  else
    lines[#lines + 1] = "    each gate's rule as printed after iteration 1"
  end
  return table.concat(lines, "\n")
end

local function switched(ev, p)
  return "  " .. p.warn(("%s: %s → %s (%s)"):format(ev.gate, tostring(ev.from), tostring(ev.to), printable(ev.reason or "")))
end

local function fallback(ev, p)
  return "  " .. p.warn(("%s: %s failed, falling back to %s (%s)"):format(ev.gate, ev.from, ev.to, printable(ev.reason or "")))
end

local function skipped_route(ev, p)
  local text = ev.refused and "%s: no fallback to %s: %s" or "%s: %s skipped: %s"
  return "  " .. p.warn(text:format(ev.gate, ev.route, printable(ev.reason or "")))
end

local function outcome(ev, p)
  local lines = { "" }
  if ev.status == "done" then
    lines[#lines + 1] = p.ok(("Done: score %s/%s after %d iteration%s; %s %s"):format(ev.total, ev.target,
      ev.iterations, ev.iterations == 1 and "" or "s",
      ev.platform == "gitlab" and "merge request" or ev.platform and "pull request" or "branch", printable(tostring(ev.pr_url))))
  else
    lines[#lines + 1] = p.bad(("BLOCKED: %s"):format(printable(ev.reason)))
    if ev.findings and #ev.findings > 0 then
      lines[#lines + 1] = "Findings still open:"
      for _, f in ipairs(ev.findings) do lines[#lines + 1] = "  - " .. printable(f) end
    end
  end
  return table.concat(lines, "\n")
end

local function note(ev, p)
  if ev.level == "info" then return p.dim(printable(ev.text)) end
  return (ev.level == "warn" and p.warn or ev.level == "bad" and p.bad or p.ok)(printable(ev.text))
end

-- What the agent does, one line a tool call: "    · bash make test".
local function agent_tool(ev, p)
  local input = ev.input or {}
  local what = input.command or input.path or input.pattern or ""
  what = tostring(what):gsub("%s+", " ")
  if #what > 100 then what = what:sub(1, 97) .. "..." end
  return "    " .. p.dim(("· %s %s"):format(printable(ev.tool), printable(what)))
end

-- For output that is not a terminal (a log, CI), where no live line shows the running work.
local function gate_started(ev, p)
  return "  " .. p.dim(("… gate %s"):format(ev.gate))
end

local function gate_finished(ev, p)
  local r = ev.result
  return "  " .. p.dim(("· gate %s: %s %s (%.1f s)"):format(r.gate, r.score and tostring(math.floor(r.score + 0.5)) or "-",
    r.status or "", r.seconds or 0))
end

-- Says something about the run (level nil: done, "info", "warn", "bad").
function M.note(bus, text, level)
  bus:emit("loop.note", { text = text, level = level })
end

M.log_formats = { ["gate.start"] = gate_started, ["gate.done"] = gate_finished }

local function run_summary(ev, p)
  local lines = {}
  for _, l in ipairs(ev.lines or {}) do lines[#lines + 1] = p.dim(printable(l)) end
  return table.concat(lines, "\n")
end

M.formats = {
  ["run.summary"] = run_summary,
  ["agent.tool"] = agent_tool,
  ["loop.banner"] = banner,
  ["loop.iteration"] = iteration_start,
  ["loop.implement"] = implement_done,
  ["loop.gates"] = gate_table,
  ["loop.outcome"] = outcome,
  ["loop.note"] = note,
  ["call.rerouted"] = switched,
  ["call.fallback"] = fallback,
  ["call.skipped"] = skipped_route,
}

return M
