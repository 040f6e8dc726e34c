-- What the LLM gates share: the shape of a finding, the verdict schema, and scoring by
-- severity — a score the gate computes from the findings, so a model cannot simply claim 100,
-- and a clean change can always reach it (the old runner's rubrics could not).
local json = require "codeassist.json"

local M = {}

M.SEVERITIES = { "critical", "high", "medium", "low", "info" }

M.FINDING = { type = "object", properties = {
  severity = { type = "string", enum = M.SEVERITIES },
  title = { type = "string" },
  file = { type = "string" },
  line = { type = "integer" },
  description = { type = "string" },
  recommendation = { type = "string" },
}, required = { "severity", "title", "description" } }

M.SCHEMA = { type = "object", properties = {
  summary = { type = "string", description = "One or two sentences: the verdict" },
  findings = { type = "array", items = M.FINDING, description = "Problems found; an empty list when there are none" },
}, required = { "summary", "findings" } }

-- A gate module for a reviewing gate: prompt, schema, and a score of 100 minus a penalty
-- per finding by severity.
function M.reviewer(def)
  local penalty = def.penalty
  local rule = ("100 − %d per critical − %d per high − %d per medium − %d per low finding")
    :format(penalty.critical, penalty.high, penalty.medium, penalty.low)
  def.kind = "llm"
  def.schema = def.schema or M.SCHEMA
  def.rule = def.rule or rule
  def.score = def.score or function(verdict)
    local total, counts = 100, {}
    for _, f in ipairs(verdict.findings or {}) do
      counts[f.severity] = (counts[f.severity] or 0) + 1
      total = total - (penalty[f.severity] or 0)
    end
    local parts = {}
    for _, s in ipairs(M.SEVERITIES) do
      if counts[s] then parts[#parts + 1] = ("%d %s"):format(counts[s], s) end
    end
    return math.max(0, total), #parts > 0 and table.concat(parts, ", ") or "no findings"
  end
  return def
end

-- Findings as the next implementation reads them.
function M.describe(f)
  local where = f.file and (f.line and ("%s:%d"):format(f.file, f.line) or f.file) or nil
  return ("[%s] %s%s — %s%s"):format(f.severity or "?", f.title or "", where and (" (" .. where .. ")") or "",
    f.description or "", f.recommendation and (" Fix: " .. f.recommendation) or "")
end

M.array = json.array

return M
