-- Shared by the benchmarks: wall time of a command, and the median of a list of times.
local proc = require "codeassist.proc"
local clock = require "codeassist.clock"

local M = {}

-- Wall time of one run, fork to exit, measured here so every command pays the same overhead.
-- Returns the seconds and proc.run's result.
function M.wall(argv)
  local t0 = clock.monotonic()
  local r = assert(proc.run(argv))
  local dt = clock.monotonic() - t0
  assert(r.code == 0, table.concat(argv, " ") .. " failed: " .. r.stderr)
  return dt, r
end

function M.median(list)
  table.sort(list)
  local m = math.floor(#list / 2)
  return #list % 2 == 1 and list[m + 1] or (list[m] + list[m + 1]) / 2
end

return M
