-- `codeassist runs` and `codeassist report`: the run folders of a repository, read back.
local runs = require "codeassist.runs"
local report = require "codeassist.report"
local ledger = require "codeassist.ledger"
local json = require "codeassist.json"
local fs = require "codeassist.fs"
local tty = require "codeassist.tty"
local errors = require "codeassist.errors"
local prices = require "codeassist.prices"

local M = {}

local function root_of(opts)
  return require("codeassist.config").repo_root(opts.repo)
end

-- A run's report: report.json when the run ended, else built from its state and ledger (a run
-- that was killed has no report yet).
local function report_of(entry)
  local doc = json.decode(fs.read(entry.paths.report_json) or "")
  if type(doc) == "table" and entry.state.outcome then return doc end
  local totals = ledger.read(entry.paths.ledger)   -- nil when there is none
  local state = {}
  for k, v in pairs(entry.state) do state[k] = v end
  state.run_id = entry.id
  state.outcome = state.outcome or { status = "stopped (no outcome: killed, or still running)" }
  return report.build(state, totals, { prices_taken = prices.TAKEN })
end

local function age(t)
  local s = os.time() - (tonumber(t) or os.time())
  if s < 120 then return ("%d s"):format(s) end
  if s < 7200 then return ("%d min"):format(math.floor(s / 60)) end
  if s < 172800 then return ("%d h"):format(math.floor(s / 3600)) end
  return ("%d days"):format(math.floor(s / 86400))
end

function M.list(opts)
  local root = root_of(opts)
  local list = runs.list(root)
  if opts.json then
    local out = json.array{}
    for _, e in ipairs(list) do
      local doc = report_of(e)
      out[#out + 1] = { id = e.id, issue = doc.issue, preset = doc.preset, outcome = doc.outcome, score = doc.score,
                        iterations = doc.iterations, usd = doc.cost.usd, saved_usd = doc.cost.saved_usd,
                        started_at = e.state.started_at, updated = e.state.updated }
    end
    io.stdout:write(json.encode(out) or "[]", "\n")
    return 0
  end
  if #list == 0 then
    print(("No runs in %s/%s yet: `codeassist run PRESET --issue N` makes one."):format(root, runs.DIR))
    return 0
  end
  local rows = { { "RUN", "ISSUE", "PRESET", "OUTCOME", "SCORE", "COST", "SAVED", "AGE" } }
  for _, e in ipairs(list) do
    local doc = report_of(e)
    local issue = doc.issue and (doc.issue.number and ("#" .. doc.issue.number) or tostring(doc.issue.title or "")) or "?"
    rows[#rows + 1] = { e.id, tty.printable(issue), tty.printable(tostring(doc.preset)),
      tty.printable(tostring(doc.outcome.status or "?"):match("^%S+")), doc.score and tostring(doc.score) or "-",
      report.money(doc.cost.usd), report.money(doc.cost.saved_usd), age(e.state.updated) }
  end
  for _, l in ipairs(tty.columns(rows, "  ")) do print(l) end
  return 0
end

function M.report(opts)
  local root = root_of(opts)
  local run, state = runs.open(root, opts.id)
  if not run then errors.usage("report: %s", state.message) end
  local doc = report_of({ id = run.id, state = state, paths = run.paths })
  if opts.json then
    io.stdout:write(json.encode(doc) or "{}", "\n")
  else
    io.stdout:write(("Run %s\n\n"):format(run.id), report.markdown(doc))
    for _, l in ipairs(report.summary(doc)) do print(l) end
  end
  return 0
end

return M
