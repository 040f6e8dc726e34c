-- codeassist.task: the coroutine scheduler, used from inside and outside tasks.
local task = require "codeassist.task"
local sched = require "codeassist.sched"
local clock = require "codeassist.clock"
local proc = require "codeassist.proc"
local fs = require "codeassist.fs"
local support = require "support"

-- The message of the error fn raises (it must raise).
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

-- Lets the scheduler run until cond() holds; fails after a generous 10 s.
local function settle(cond)
  local deadline = clock.monotonic() + 10
  while not cond() do
    assert(clock.monotonic() < deadline, "the tasks did not get there within 10 s")
    task.sleep(0.005)
  end
end

-- Live (not zombie) children of this process whose command is name.
local function children_named(name)
  local me = tonumber(fs.read("/proc/self/stat"):match("^(%d+)"))
  local found = {}
  for _, entry in ipairs(fs.list("/proc")) do
    local stat = entry:match("^%d+$") and fs.read("/proc/" .. entry .. "/stat")
    local comm, state, ppid = (stat or ""):match("^%d+ %((.-)%) (%S+) (%d+)")
    if comm == name and state ~= "Z" and tonumber(ppid) == me then found[#found + 1] = tonumber(entry) end
  end
  return found
end

local function run_script(code)
  local dir = support.tmpdir()
  support.write(dir .. "/x.lua", code)
  local r = support.codeassist({ "run", "x.lua" }, { cwd = dir })
  support.cleanup()
  return r
end

describe("codeassist.task", function()
  it("runs spawned functions and hands their results to join", function()
    local t = task.spawn(function(a, b) return a + b, "sum" end, 2, 3)
    assert.are.same({ true, 5, "sum" }, { task.join(t) })
    assert.are.equal("done", task.status(t))
    assert.are.same({ true, 5, "sum" }, { task.join(t) })   -- join again: same answer
  end)

  it("reports a failed task through join, with where it failed", function()
    local t = task.spawn(function() local x = nil; return x.y end)
    local ok, err = task.join(t)
    assert.is_false(ok)
    assert.matches("^tests/spec/task_spec%.lua:%d+: attempt to index local 'x'", err)
    assert.matches("task_spec%.lua", task.traceback(t))
  end)

  it("sleeps concurrently: three 0.5 s sleeps take less than the 1.5 s they would in turn", function()
    local t0 = clock.monotonic()
    local ts = {}
    for i = 1, 3 do ts[i] = task.spawn(function() return task.sleep(0.5) end) end
    for i = 1, 3 do assert.are.same({ true, true }, { task.join(ts[i]) }) end
    local dt = clock.monotonic() - t0
    assert.is_true(dt >= 0.49 and dt < 1.4, "took " .. dt)
  end)

  it("interleaves tasks that yield, in order", function()
    local seen = {}
    local function worker(name)
      for i = 1, 3 do
        seen[#seen + 1] = name .. i
        coroutine.yield()   -- a plain yield inside a task lets the others run
      end
    end
    local a, b = task.spawn(worker, "a"), task.spawn(worker, "b")
    task.join(a); task.join(b)
    assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, seen)
  end)

  it("times out a slow function and cancels it", function()
    local finished = false
    local t0 = clock.monotonic()
    local r, err = task.timeout(0.1, function() task.sleep(5); finished = true end)
    assert.is_nil(r)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("did not finish within 0.1 s", err.message)
    assert.is_true(clock.monotonic() - t0 < 4, "well before the task's own 5 s")
    task.sleep(0.05)
    assert.is_false(finished)
    assert.are.same({ "fine", 2 }, { task.timeout(1, function() task.sleep(0.01); return "fine", 2 end) })
    assert.has_error(function() task.timeout(1, function() error("inner") end) end, "inner")
  end)

  it("cancels a waiting task and a task that has not started", function()
    local t = task.spawn(function() task.sleep(10) end)
    task.sleep(0.01)
    assert.is_true(task.cancel(t))
    local ok, err = task.join(t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("task cancelled", tostring(err))

    local ran = false
    local u = task.spawn(function() ran = true end)
    task.cancel(u)
    ok, err = task.join(u)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.is_false(ran)
    assert.is_false(task.cancel(u))   -- already finished
  end)

  it("caps concurrency with a semaphore", function()
    local sem = task.semaphore(2)
    local running, peak = 0, 0
    local ts = {}
    for i = 1, 6 do
      ts[i] = task.spawn(function()
        return sem:with(function()
          running = running + 1
          peak = math.max(peak, running)
          task.sleep(0.05)
          running = running - 1
          return i
        end)
      end)
    end
    for i = 1, 6 do assert.are.same({ true, i }, { task.join(ts[i]) }) end
    assert.are.equal(2, peak)
    assert.are.equal(2, sem.free)
    assert.is_true(sem:acquire(0.01))
    assert.is_true(sem:acquire(0.01))
    local ok, err = sem:acquire(0.05)
    assert.is_nil(ok)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("timed out", err.message)
  end)

  it("says deadlock instead of hanging when nothing can wake a wait", function()
    local cond = sched.cond()
    local t0 = clock.monotonic()
    assert.are.same({ nil, "deadlock" }, { sched.wait(cond) })
    assert.is_true(clock.monotonic() - t0 < 5)
    local ok, err = task.wait(cond)
    assert.is_nil(ok)
    assert.are.equal("deadlock", err.kind)
    assert.matches("nothing could ever end the wait", err.message)
    local stuck = task.spawn(function() task.wait(cond) end)
    ok, err = task.join(stuck)
    assert.is_false(ok)
    assert.are.equal("deadlock", err.kind)
    assert.matches("^waiting for task %d+ %(waiting%): nothing could ever end the wait", err.message)
    task.cancel(stuck)
  end)

  it("wakes a cond's waiters", function()
    local cond, got = sched.cond(), {}
    local ts = {}
    for i = 1, 3 do ts[i] = task.spawn(function() task.wait(cond); got[#got + 1] = i end) end
    task.sleep(0.01)
    cond:signal()
    task.sleep(0.01)
    assert.are.same({ 1 }, got)
    cond:broadcast()
    for i = 1, 3 do task.join(ts[i]) end
    assert.are.same({ 1, 2, 3 }, got)
  end)

  it("finishes tasks left running when a script ends, and reports failures nobody saw", function()
    local dir = support.tmpdir()
    support.write(dir .. "/left.lua", [[
local task = require "codeassist.task"
task.spawn(function() task.sleep(0.1); print("late task done") end)
task.spawn(function() error("nobody joins me") end)
local joined = task.spawn(function() error("joined") end)
task.join(joined)
local cancelled = task.spawn(function() task.sleep(10) end)
task.cancel(cancelled)
print(task.timeout(0.01, function() task.sleep(10) end))
print("main done")
]])
    local r = support.codeassist({ "run", dir .. "/left.lua" })
    assert.are.equal(0, r.code)
    assert.are.equal("nil\tdid not finish within 0.01 s\nmain done\nlate task done\n", r.stdout)
    -- one report: the failure nobody joined; not the joined one, not the cancelled ones
    assert.matches("^codeassist: warning: a task failed and nobody joined it: [^\n]*nobody joins me\n$", r.stderr)
    support.cleanup()
  end)

  it("forgets a failed task once it is joined: 40,000 joined failures stay in bounded memory", function()
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    for i = 1, 40000 do
      local ok, err = task.join(task.spawn(function() error("failure " .. i, 0) end))
      if ok or err ~= "failure " .. i then error("join gave " .. tostring(ok) .. ", " .. tostring(err)) end
    end
    collectgarbage()
    collectgarbage()
    local grown = collectgarbage("count") - before
    -- kept until sched.unobserved(), they took about 37 MB
    assert.is_true(grown < 4096, ("the Lua heap grew by %.0f KB"):format(grown))
  end)

  describe("structured concurrency", function()
    it("cancelling a task ends the process its sub-task runs, at once", function()
      local parent = task.spawn(function()
        local sub = task.spawn(function() return proc.run{ "sleep", "30" } end)
        task.join(sub)
      end)
      local pid
      settle(function() pid = children_named("sleep")[1]; return pid end)
      assert.is_true(task.cancel(parent))
      local deadline = clock.monotonic() + 1
      while fs.stat("/proc/" .. pid) and clock.monotonic() < deadline do task.sleep(0.01) end
      assert.is_nil(fs.stat("/proc/" .. pid), "sleep 30 is still there")   -- gone, not even a zombie
      local ok, err = task.join(parent)
      assert.is_false(ok)
      assert.are.equal("cancelled", err.kind)
    end)

    it("cancelling a task cancels every unfinished descendant", function()
      local child, grandchild
      local parent = task.spawn(function()
        child = task.spawn(function()
          grandchild = task.spawn(function() task.sleep(30) end)
          task.sleep(30)
        end)
        task.sleep(30)
      end)
      settle(function() return grandchild and task.status(grandchild) == "waiting" end)
      task.cancel(parent)
      for _, t in ipairs{ parent, child, grandchild } do
        local ok, err = task.timeout(5, task.join, t)
        assert.is_false(ok, tostring(err))
        assert.are.equal("cancelled", err.kind)
      end
    end)

    it("a task that fails cancels its unfinished children", function()
      local kid
      local failing = task.spawn(function()
        kid = task.spawn(function() task.sleep(30) end)
        task.sleep(0.01)
        error("the parent broke", 0)
      end)
      assert.are.same({ false, "the parent broke" }, { task.join(failing) })
      local ok, err = task.timeout(5, task.join, kid)
      assert.is_false(ok, tostring(err))
      assert.are.equal("cancelled", err.kind)
    end)

    it("a cancelled task that catches the error cannot start new work: its sub-tasks never run", function()
      local ran, inner = false, nil
      local t = task.spawn(function()
        local ok, err = pcall(task.sleep, 30)
        assert(not ok and err.kind == "cancelled")
        inner = task.spawn(function() ran = true end)
        return "cleaned up"
      end)
      settle(function() return task.status(t) == "waiting" end)
      task.cancel(t)
      assert.are.same({ true, "cleaned up" }, { task.join(t) })
      local ok, err = task.join(inner)
      assert.is_false(ok)
      assert.are.equal("cancelled", err.kind)
      assert.is_false(ran)
    end)

    it("a task that returns leaves its children running, still reached by an ancestor's cancel", function()
      local orphan
      local outer = task.spawn(function()
        local middle = task.spawn(function()
          orphan = task.spawn(function() task.sleep(30) end)
          return "middle done"
        end)
        assert(task.join(middle))
        task.sleep(30)
      end)
      settle(function() return orphan and task.status(orphan) == "waiting" and task.status(outer) == "waiting" end)
      task.cancel(outer)
      local ok, err = task.timeout(5, task.join, orphan)
      assert.is_false(ok, tostring(err))
      assert.are.equal("cancelled", err.kind)

      -- a task spawned at the top level from a finished task is nobody's child
      local free
      task.join(task.spawn(function() free = task.spawn(function() task.sleep(0.01); return "free" end) end))
      assert.are.same({ true, "free" }, { task.join(free) })
    end)
  end)

  describe("misuse", function()
    it("refuses to wait inside a coroutine that is not a task, at the caller's line", function()
      local line
      local t = task.spawn(function()
        local f = coroutine.wrap(function() line = debug.getinfo(1, "l").currentline; task.sleep(0.05) end)
        f()
      end)
      local ok, err = task.join(t)
      assert.is_false(ok)
      -- coroutine.wrap puts the line that called f in front
      assert.matches("^tests/spec/task_spec%.lua:%d+: tests/spec/task_spec%.lua:" .. line
        .. ": cannot wait inside a coroutine that is not a task .*; run it with task%.spawn$", err)
      local co = coroutine.create(function() line = debug.getinfo(1, "l").currentline; proc.run{ "true" } end)
      local resumed, e = coroutine.resume(co)
      assert.is_false(resumed)
      assert.matches("^tests/spec/task_spec%.lua:" .. line .. ": cannot wait inside a coroutine", e)
    end)

    it("raises a caller's mistake at the caller's line", function()
      local here = "^tests/spec/task_spec%.lua:%d+: "
      local sem = task.semaphore(1)
      for pattern, fn in pairs{
        ["task%.sleep: seconds must be a number >= 0, not %-1"] = function() task.sleep(-1) end,
        ["task%.timeout: seconds must be a number >= 0, not a string"] = function() task.timeout("x", print) end,
        ["task%.timeout: expected a function to run, not a nil"] = function() task.timeout(1) end,
        ["task%.semaphore: size must be a whole number >= 1, not 0"] = function() task.semaphore(0) end,
        ["task%.join: expected a task %(from task%.spawn%), not a string"] = function() task.join("t") end,
        ["task%.wait: expected a task, a cond, a transfer or a child process, not a table"] = function() task.wait({}) end,
        ["task%.wait: timeout must be a number >= 0, not %-1"] = function() task.wait(nil, -1) end,
        ["semaphore:acquire: timeout must be a number >= 0, not a string"] = function() sem:acquire("1") end,
        ["semaphore:acquire: call it with a colon, as sem:acquire%(%.%.%.%)"] = function() sem.acquire() end,
        ["semaphore:release: released more often than acquired"] = function() sem:release() end,
        ["semaphore:with: expected a function to run, not a nil"] = function() sem:with() end,
        ["bad argument #1 to 'spawn' %(function expected, got nil%)"] = function() task.spawn(nil) end,
      } do
        assert.matches(here .. pattern, raised(fn))
      end
    end)

    it("reports a script's misuse as its own FILE:LINE with exit 2, not as a bug", function()
      for _, case in ipairs{
        { "task.sleep(-1)", "task%.sleep: seconds must be a number >= 0" },
        { 'task.timeout("x", function() end)', "task%.timeout: seconds must be a number >= 0" },
        { "task.semaphore(0)", "task%.semaphore: size must be a whole number >= 1" },
        -- coroutine.wrap puts its caller's line in front of a message (once more: 1)
        { "coroutine.wrap(function() task.sleep(0.05) end)()", "cannot wait inside a coroutine that is not a task", 1 },
        -- a tail call leaves no frame of the script inside the coroutine: wrap's line only
        { "coroutine.wrap(function() return task.sleep(0.05) end)()", "cannot wait inside a coroutine that is not a task" },
        { "error(select(2, task.join(task.spawn(function() coroutine.wrap(function() task.sleep(0.05) end)() end))), 0)",
          "cannot wait inside a coroutine that is not a task", 1 },
      } do
        local r = run_script('local task = require "codeassist.task"\n\n' .. case[1] .. "\n")
        assert.are.equal(2, r.code, r.stderr)
        assert.matches("^codeassist: x%.lua:3: " .. ("x%.lua:3: "):rep(case[3] or 0) .. case[2], r.stderr)
        assert.not_matches("internal error", r.stderr)
      end
    end)
  end)
end)

describe("task.join_all", function()
  it("waits for every task, then raises the first failure", function()
    local task = require "codeassist.task"
    local done = {}
    local list = {
      task.spawn(function() task.sleep(0.05); done[#done + 1] = "slow" end),
      task.spawn(function() error({ kind = "io", message = "first" }, 0) end),
      task.spawn(function() error("second", 0) end),
    }
    local ok, err = pcall(task.join_all, list)
    assert.is_false(ok)
    assert.are.equal("first", err.message)
    assert.are.same({ "slow" }, done)   -- the slow one was waited for
    assert.has_no.errors(function() task.join_all{ task.spawn(function() end) } end)
  end)
end)
