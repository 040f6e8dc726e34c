-- Running programs: proc.run on the host's event loop (codeassist.proc_core).
--
--   local r, err = proc.run{ "make", "test", cwd = dir, timeout = 600 }
--   r.code, r.signal, r.stdout, r.stderr, r.timed_out, r.interrupted, r.duration ...
--   err.kind: not_found (no such program or working directory), permission, exec
--
-- Inside a task, proc.run yields while the program runs, so other tasks (streams, other
-- programs) keep going; outside any task it turns the loop itself. The full option and
-- result list is in runtime/proc.c. A wrong option raises at the caller's line.
local core = require "codeassist.proc_core"
local task = require "codeassist.task"
local errors = require "codeassist.errors"

local M = {}

function M.run(spec)
  errors.argcheck(type(spec) == "table",
    'proc.run: give a table such as {"make", "test", cwd = dir}, not a %s', type(spec))
  -- The C side checks the options; through pcall its message has no position, and the
  -- caller's line is put in front of it here (the caller's mistake, not ours).
  local ok, child, err = pcall(core.spawn, spec)
  if not ok then errors.misuse("%s", tostring(child)) end
  if not child then return nil, err end
  while not child:finished() do
    -- "interrupted": the loop has already begun stopping the child; collect what it left.
    task.wait(child, nil, child)
  end
  return child:result()
end

M.spawn = core.spawn

return M
