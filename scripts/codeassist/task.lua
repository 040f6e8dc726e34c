-- Tasks: cooperative coroutines run by the host's scheduler (codeassist.sched).
--
--   local task = require "codeassist.task"
--   local t = task.spawn(fn, ...)           -- runs fn(...) concurrently
--   local ok, a, b = task.join(t)          -- true, results... | false, err
--   task.sleep(0.5)
--   local r, err = task.timeout(10, fn, ...) -- fn's results, or nil, {kind = "timeout"}
--   task.cancel(t)                          -- t and its sub-tasks unwind with a "cancelled"
--                                           -- error; their transfers and processes go at once
--   local sem = task.semaphore(2)           -- sem:acquire() / sem:release() / sem:with(fn, ...)
--
-- A task spawned while another runs is its child: cancelling a task cancels its unfinished
-- sub-tasks, a task that fails cancels them too, and one that returns hands them to its own
-- parent. Waiting works inside a task, and on the main thread outside any task (the call
-- then turns the event loop itself, so a plain script needs no set-up); inside any other
-- coroutine (coroutine.wrap) it raises: run that code with task.spawn instead.
--
-- Waits that end badly return nil and a failure (errors.failure) of kind "timeout",
-- "interrupted" (SIGINT/SIGTERM) or "deadlock" (nothing could ever end the wait); a
-- cancelled task never sees a return value: its wait raises the "cancelled" failure, so its
-- loops and retries stop too.
local sched = require "codeassist.sched"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"

local M = {}

local unpack = unpack or table.unpack
local failure, argcheck = errors.failure, errors.argcheck
local TaskMT = debug.getregistry()["codeassist.task"]

local function pack(...) return { n = select("#", ...), ... } end

-- "-1", "a string": what a caller passed, for misuse messages.
local function shown(v)
  return type(v) == "number" and tostring(v) or "a " .. type(v)
end

local function is_task(v) return getmetatable(v) == TaskMT end

-- A duration: a finite number >= 0 (NaN and infinity would wait for ever; say so instead).
local function is_seconds(v) return type(v) == "number" and v >= 0 and v ~= math.huge end

function M.cancelled_error()
  return failure("cancelled", "task cancelled")
end

local WHY = {
  timeout = "timed out",
  interrupted = "interrupted (SIGINT/SIGTERM)",
  deadlock = "nothing could ever end the wait (deadlock)",
}

-- The one place a wait turns into the cancellation error (task, proc and http all wait
-- here): waits for obj (a task, cond, transfer or child; nil: only the clock) at most
-- timeout seconds. true, or nil and a failure (timeout, interrupted, deadlock). In a
-- cancelled task it raises instead, after release() or release:close() — what the waiter
-- holds that its task may not own (a transfer opened by another task).
local function wait(obj, timeout, release)
  local ok, why = sched.wait(obj, timeout)
  if ok then return true end
  if why == "cancelled" then
    if type(release) == "function" then release() elseif release then release:close() end
    error(M.cancelled_error(), 0)
  end
  return nil, failure(why, WHY[why] or why)
end

function M.wait(obj, timeout, release)
  argcheck(obj == nil or sched.waitable(obj),
    "task.wait: expected a task, a cond, a transfer or a child process, not %s", shown(obj))
  argcheck(timeout == nil or is_seconds(timeout), "task.wait: timeout must be a number >= 0, not %s",
    shown(timeout))
  return wait(obj, timeout, release)
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

-- true, results... when the task returned; false, err when it raised or was cancelled (err
-- is what it raised), or when the wait for it ended (interrupted, deadlock).
function M.join(t)
  argcheck(is_task(t), "task.join: expected a task (from task.spawn), not %s", shown(t))
  while not finished(t) do
    local ok, err = wait(t)
    if not ok then
      return false, failure(err.kind, ("waiting for %s: %s"):format(tostring(t), err.message))
    end
  end
  return sched.result(t)
end

-- Joins every task of a list (waiting for all of them), then raises the first one's error,
-- if any failed: for work split into tasks that must all succeed.
function M.join_all(list)
  argcheck(type(list) == "table", "task.join_all: expected a list of tasks, not %s", shown(list))
  local first
  for _, t in ipairs(list) do
    local ok, err = M.join(t)
    if not ok and first == nil then first = err end
  end
  if first ~= nil then error(first, 0) end
end

-- Sleeps; true when the time is up, nil and an "interrupted" failure if a signal cut it short.
function M.sleep(seconds)
  argcheck(is_seconds(seconds), "task.sleep: seconds must be a number >= 0, not %s", shown(seconds))
  local ok, err = wait(nil, seconds)
  if ok or err.kind == "timeout" then return true end
  return nil, err
end

-- Runs fn(...) as a task with a deadline: its results, or nil and a timeout failure after
-- cancelling it. An error raised by fn is raised again here.
function M.timeout(seconds, fn, ...)
  argcheck(is_seconds(seconds), "task.timeout: seconds must be a number >= 0, not %s", shown(seconds))
  argcheck(type(fn) == "function", "task.timeout: expected a function to run, not %s", shown(fn))
  local t = sched.spawn(fn, ...)
  local deadline = clock.monotonic() + seconds
  while not finished(t) do
    local left = deadline - clock.monotonic()
    local ok, err
    if left > 0 then ok, err = wait(t, left) end
    if not ok and (left <= 0 or err.kind == "timeout") and not finished(t) then
      sched.cancel(t)
      return nil, failure("timeout", ("did not finish within %g s"):format(seconds))
    elseif not ok and err.kind ~= "timeout" then
      sched.cancel(t)
      return nil, err
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
  argcheck(type(n) == "number" and n >= 1 and n % 1 == 0,
    "task.semaphore: size must be a whole number >= 1, not %s", shown(n))
  return setmetatable({ free = n, size = n, cond = sched.cond() }, Semaphore)
end

-- Level 3: the line that called the method (errors.argcheck would blame the method).
local function check_self(self, method)
  if getmetatable(self) ~= Semaphore then
    error(("semaphore:%s: call it with a colon, as sem:%s(...)"):format(method, method), 3)
  end
end

-- true, or nil and a failure (timeout, interrupted).
function Semaphore:acquire(timeout)
  check_self(self, "acquire")
  argcheck(timeout == nil or is_seconds(timeout),
    "semaphore:acquire: timeout must be a number >= 0, not %s", shown(timeout))
  local deadline = timeout and clock.monotonic() + timeout
  while self.free <= 0 do
    local left = deadline and math.max(0, deadline - clock.monotonic())
    -- a wake-up meant for us must not be lost when we give up
    local function pass_on() if self.free > 0 then self.cond:signal() end end
    local ok, err = wait(self.cond, left, pass_on)
    if not ok then
      pass_on()
      return nil, err
    end
  end
  self.free = self.free - 1
  return true
end

function Semaphore:release()
  check_self(self, "release")
  argcheck(self.free < self.size, "semaphore:release: released more often than acquired")
  self.free = self.free + 1
  self.cond:signal()
end

-- Runs fn(...) holding the semaphore; releases it however fn ends.
function Semaphore:with(fn, ...)
  check_self(self, "with")
  argcheck(type(fn) == "function", "semaphore:with: expected a function to run, not %s", shown(fn))
  local ok, err = self:acquire()
  if not ok then return nil, err end
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

return M
