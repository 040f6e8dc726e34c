-- Start-up time: median wall time of `codeassist run empty.lua` over many runs, next to
-- `curl --version` (the floor: the same libcurl and the libraries it pulls in) and bare LuaJIT.
local measure = require "measure"

local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 20
local bin = assert(os.getenv("CODEASSIST_BIN"), "run through tests/bench/run.sh")

local empty = os.tmpname()
assert(io.open(empty, "w")):close()

local wall, median = measure.wall, measure.median

-- Runs are interleaved, so a slow moment of the machine hits every command alike.
local commands = {
  ours = { bin, "run", empty },
  curl = { "curl", "--version" },
  luajit = { "luajit", "-e", "" },
}
local times = {}
for name, argv in pairs(commands) do
  wall(argv)   -- warm the page cache
  times[name] = {}
end
for i = 1, RUNS do
  for name, argv in pairs(commands) do times[name][i] = wall(argv) end
end
local ours, curl, luajit = median(times.ours), median(times.curl), median(times.luajit)
os.remove(empty)

print(("start-up, median of %d runs:"):format(RUNS))
print(("  codeassist run empty.lua  %7.2f ms"):format(ours * 1000))
print(("  curl --version            %7.2f ms   codeassist / curl = %.2f  (goal <= 1.00)")
  :format(curl * 1000, ours / curl))
print(("  luajit -e ''              %7.2f ms   codeassist / luajit = %.2f  (no libcurl: for scale)")
  :format(luajit * 1000, ours / luajit))
