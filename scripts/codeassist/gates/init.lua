-- The gates: the eight built-in ones (one file each in this folder) and a project's own, from
-- `.codeassist/gates/*.lua` in its repository, which may add gates or replace built-in ones.
--
-- A gate is a small table:
--   name, kind = "llm" | "measured", prompt (the rubric), schema (of the verdict), rule (how it
--   scores, printed with the score), score(verdict, check) -> 0..100, reason;
--   measured gates: step = "build" | "test" and check(ctx) -> {score, reason, output, ...}.
-- Weight, required, parallel group, timeout and needs (tools, context) come from the config
-- and the preset (plan.gates), with the gate's own defaults for a project gate.
local schema = require "codeassist.schema"
local errors = require "codeassist.errors"
local fs = require "codeassist.fs"

local M = {}

M.BUILTIN = { "test", "security", "build", "review", "mentor", "architect", "ux", "devops" }

local GATE = { type = "table", fields = {
  name = { type = "string", required = true },
  kind = { type = "string", enum = { "llm", "measured" }, required = true },
  prompt = { type = "string", required = true },
  schema = { type = "table", open = true, required = true },
  rule = { type = "string" },
  score = { type = "function", required = true },
  check = { type = "function" },
  step = { type = "string", enum = { "build", "test" } },
  penalty = { type = "table", open = true },
  description = { type = "string" },
  -- defaults for a project gate the config does not mention
  weight = { type = "number", min = 0, max = 100 }, required = { type = "boolean" },
  parallel_group = { type = "integer", min = 0, max = 100 }, timeout = { type = "number", min = 1 },
  tools = { type = "boolean" }, context = { type = "integer", min = 512 },
  call_timeout = { type = "number", min = 0.1 },
} }

-- Checks a gate table; raises a config error naming where it came from.
function M.validate(gate, where)
  local problems = schema.problems(gate, GATE, { unknown = "error", lua = true })
  if #problems.errors > 0 then
    errors.config("%s: the gate has %d problem%s:\n  %s", where, #problems.errors, #problems.errors == 1 and "" or "s",
      table.concat(problems.errors, "\n  "))
  end
  if gate.kind == "measured" and not (gate.check and gate.step) then
    errors.config("%s: a measured gate needs check and step", where)
  end
  return gate
end

-- The gates for a repository: name -> gate (with .source).
function M.load(root)
  local gates = {}
  for _, name in ipairs(M.BUILTIN) do
    local g = require("codeassist.gates." .. name)
    g.source = "built-in"
    gates[name] = g
  end
  local dir = root and (root .. "/.codeassist/gates")
  local st = dir and fs.stat(dir)
  if st and st.type == "dir" then
    for _, file in ipairs(fs.list(dir) or {}) do
      if file:match("%.lua$") then
        local path = dir .. "/" .. file
        local chunk, err = loadfile(path)
        if not chunk then errors.config("%s", err) end
        local g = errors.call_user(path, chunk)
        if type(g) ~= "table" then errors.config("%s must return a gate table, not %s", path, type(g)) end
        g.name = g.name or file:gsub("%.lua$", "")
        M.validate(g, path)
        g.source = path
        gates[g.name] = g
      end
    end
  end
  return gates
end

return M
