-- Tasks: cooperative coroutines run by the host's scheduler (codeassist.sched).
--
--   local task = require "codeassist.task"
--   local t = task.spawn(fn, ...)           -- runs fn(...) concurrently
--   local ok, a, b = task.join(t)          -- true, results... | false, err
--   task.sleep(0.5)
--   local r, err = task.timeout(10, fn, ...) -- fn's results, or nil, {kind = "timeout"}
--   task.cancel(t)                          -- wakes it with a "cancelled" error, frees its transfers
--   local sem = task.semaphore(2)           -- sem:acquire() / sem:release() / sem:with(fn, ...)
--
-- Every call also works outside a task: it then turns the event loop itself, so a plain
-- script can spawn a few tasks and join them without any set-up.
local sched = require "codeassist.sched"
local clock = require "codeassist.clock"

local M = {}

local unpack = unpack or table.unpack

local function pack(...) return { n = select("#", ...), ... } end

local failure = require("codeassist.errors").failure
M.failure = failure

function M.cancelled_error()
  return failure("cancelled", "task cancelled")
end

-- sched.wait, with a cancelled task unwinding by error (so loops and retries stop too).
-- Returns true, or nil and "timeout" | "interrupted" | "deadlock".
function M.wait(obj, timeout)
  local ok, why = sched.wait(obj, timeout)
  if ok then return true end
  if why == "cancelled" then error(M.cancelled_error(), 0) end
  return nil, why
end

M.spawn = sched.spawn
M.cancel = sched.cancel
M.status = sched.status
M.current = sched.current
M.run = sched.run
M.traceback = sched.traceback

local function finished(t)
  local s = sched.status(t)
  return s == "done" or s == "failed"
end

-- true, results... when the task returned; false, err when it raised or was cancelled.
function M.join(t)
  while not finished(t) do
    local ok, why = M.wait(t)
    if not ok and why ~= "timeout" then
      return false, failure(why == "interrupted" and "cancelled" or why,
        why == "interrupted" and "interrupted while waiting for a task" or "the task can never finish (" .. why .. ")")
    end
  end
  return sched.result(t)
end

-- Sleeps; true when the time is up, nil and "interrupted" if a signal cut it short.
function M.sleep(seconds)
  assert(type(seconds) == "number" and seconds >= 0, "task.sleep: seconds must be a number >= 0")
  local ok, why = sched.wait(nil, seconds)
  if why == "timeout" or ok then return true end
  if why == "cancelled" then error(M.cancelled_error(), 0) end
  return nil, why
end

-- Runs fn(...) as a task with a deadline: its results, or nil and a timeout failure after
-- cancelling it. An error raised by fn is raised again here.
function M.timeout(seconds, fn, ...)
  assert(type(seconds) == "number" and seconds >= 0, "task.timeout: seconds must be a number >= 0")
  local t = sched.spawn(fn, ...)
  local deadline = clock.monotonic() + seconds
  while not finished(t) do
    local left = deadline - clock.monotonic()
    local ok, why
    if left > 0 then ok, why = sched.wait(t, left) end
    if not ok and (left <= 0 or why == "timeout") and not finished(t) then
      sched.cancel(t)
      return nil, failure("timeout", ("did not finish within %g s"):format(seconds))
    elseif not ok and why == "cancelled" then
      sched.cancel(t)
      error(M.cancelled_error(), 0)
    elseif not ok and why ~= "timeout" then
      sched.cancel(t)
      return nil, failure("cancelled", why)
    end
  end
  local r = pack(sched.result(t))
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- A counting semaphore: caps how many tasks do something at once (e.g. per endpoint).
local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(n)
  assert(type(n) == "number" and n >= 1, "task.semaphore: size must be a number >= 1")
  return setmetatable({ free = n, size = n, cond = sched.cond() }, Semaphore)
end

-- true, or nil and "timeout" | "interrupted".
function Semaphore:acquire(timeout)
  local deadline = timeout and clock.monotonic() + timeout
  while self.free <= 0 do
    local left = deadline and math.max(0, deadline - clock.monotonic())
    local ok, why = sched.wait(self.cond, left)
    if not ok then
      -- a wake-up meant for us must not be lost when we give up
      if self.free > 0 then self.cond:signal() end
      if why == "cancelled" then error(M.cancelled_error(), 0) end
      return nil, why
    end
  end
  self.free = self.free - 1
  return true
end

function Semaphore:release()
  assert(self.free < self.size, "semaphore released more often than acquired")
  self.free = self.free + 1
  self.cond:signal()
end

-- Runs fn(...) holding the semaphore; releases it however fn ends.
function Semaphore:with(fn, ...)
  local ok, why = self:acquire()
  if not ok then return nil, failure(why == "interrupted" and "cancelled" or why, why) end
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

return M
