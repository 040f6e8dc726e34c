-- bash: a shell command in the repository, checked by the guardrails, run in the sandbox,
-- with a timeout that ends its whole process group and an output cut to head and tail.
local workspace = require "codeassist.agent.workspace"

local MAX_OUTPUT = 30000

return {
  name = "bash",
  description = "Run a shell command (sh -c) in the repository root: build, test, git status/diff/add/commit. "
    .. "Pushing, force-pushing and reset --hard are refused. Output is cut to its head and tail.",
  input_schema = { type = "object", properties = {
    command = { type = "string", description = "The command line" },
    timeout = { type = "integer", minimum = 1, maximum = 3600, description = "Seconds before it is stopped (default 120)" },
  }, required = { "command" } },

  run = function(input, env)
    local ok, why = env.guard:check_command(input.command)
    if not ok then return nil, "refused by the guardrails: " .. why, { decision = "deny", reason = why } end
    -- the model may ask for less time than agent.bash_timeout, never more
    local limit = env.bash_timeout or 120
    local timeout = math.min(input.timeout or limit, limit)
    local r, err = env.sandbox:run(input.command, { timeout = timeout })
    if not r then return nil, err.message end
    local out = r.stdout
    if r.stderr ~= "" then out = out .. (out ~= "" and out:sub(-1) ~= "\n" and "\n" or "") .. r.stderr end
    local status = r.timed_out and ("stopped after %g s (timeout)"):format(timeout)
      or r.signal_name and ("killed by %s"):format(r.signal_name) or ("exit code %d"):format(r.code)
    local text = status .. "\n" .. workspace.cap(out, MAX_OUTPUT)
    if r.code ~= 0 or r.timed_out then return nil, text, { exit = r.code } end
    return text, nil, { exit = r.code }
  end,
}
