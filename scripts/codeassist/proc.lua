-- Running programs: proc.run on the host's event loop (codeassist.proc_core).
--
--   local r, err = proc.run{ "make", "test", cwd = dir, timeout = 600 }
--   r.code, r.signal, r.stdout, r.stderr, r.timed_out, r.interrupted, r.duration ...
--
-- Inside a task, proc.run yields while the program runs, so other tasks (streams, other
-- programs) keep going; outside any task it turns the loop itself. The full option and
-- result list is in runtime/proc.c.
local core = require "codeassist.proc_core"
local sched = require "codeassist.sched"
local task = require "codeassist.task"

local M = {}

function M.run(spec)
  local child, err = core.spawn(spec)
  if not child then return nil, err end
  while not child:finished() do
    local ok, why = sched.wait(child)
    if not ok and why == "cancelled" then
      child:close()
      error(task.cancelled_error(), 0)
    end
    -- "interrupted": the loop has already begun stopping the child; collect what it left.
  end
  return child:result()
end

M.spawn = core.spawn

return M
