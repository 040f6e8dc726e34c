-- codeassist.task: the coroutine scheduler, used from inside and outside tasks.
local task = require "codeassist.task"
local sched = require "codeassist.sched"
local clock = require "codeassist.clock"
local support = require "support"

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
    assert.matches("attempt to index local 'x'", err)
    assert.matches("task_spec%.lua", task.traceback(t))
  end)

  it("sleeps concurrently: three 0.2 s sleeps take about 0.2 s", function()
    local t0 = clock.monotonic()
    local ts = {}
    for i = 1, 3 do ts[i] = task.spawn(function() return task.sleep(0.2) end) end
    for i = 1, 3 do assert.are.same({ true, true }, { task.join(ts[i]) }) end
    local dt = clock.monotonic() - t0
    assert.is_true(dt >= 0.19 and dt < 0.4, "took " .. dt)
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
    assert.is_true(clock.monotonic() - t0 < 0.3)
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
    assert.are.same({ nil, "timeout" }, { sem:acquire(0.05) })
  end)

  it("says deadlock instead of hanging when nothing can wake a wait", function()
    local cond = sched.cond()
    local t0 = clock.monotonic()
    assert.are.same({ nil, "deadlock" }, { sched.wait(cond) })
    assert.is_true(clock.monotonic() - t0 < 0.1)
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
print("main done")
]])
    local r = support.codeassist({ "run", dir .. "/left.lua" })
    assert.are.equal(0, r.code)
    assert.are.equal("main done\nlate task done\n", r.stdout)
    assert.matches("a task failed and nobody joined it: .*nobody joins me", r.stderr)
    support.cleanup()
  end)
end)
