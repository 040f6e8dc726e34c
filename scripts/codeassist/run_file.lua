-- `codeassist run FILE args...`: runs FILE the way `lua FILE args...` would (a `#!` first
-- line is skipped; `...` and the global `arg` carry the arguments), with FILE's folder
-- first on package.path so a preset can require its neighbours.
local errors = require "codeassist.errors"

local M = {}

local function folder_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- Tasks the script spawned and left running finish before the process exits (like any event
-- loop); failures nobody asked about are reported rather than lost.
function M.finish_tasks()
  local sched = package.loaded["codeassist.sched"]
  if not sched then return end
  local ok, why = sched.run()
  if not ok and why == "deadlock" then
    io.stderr:write("codeassist: warning: some tasks were still waiting for something that can "
      .. "never happen when the script ended\n")
  end
  for _, err in ipairs(sched.unobserved()) do
    local text = type(err) == "table" and (err.message or tostring(err)) or tostring(err)
    io.stderr:write("codeassist: warning: a task failed and nobody joined it: ", text, "\n")
  end
end

-- A file that returns a preset: `--test-provider` (the old runner's flag, also `--doctor`)
-- runs the doctor with it and takes the doctor's options; the development loop itself is not
-- in this build yet.
function M.run_preset(file, preset, args)
  local wants_doctor = false
  for _, a in ipairs(args) do
    if a == "--test-provider" or a == "--doctor" or a == "--help" or a == "-h" then wants_doctor = true end
  end
  if not wants_doctor then
    errors.usage("%s returned a preset, but this build of codeassist cannot run the development "
      .. "loop yet; check its routes with `codeassist run %s --test-provider` or `codeassist doctor %s`",
      file, file, file)
  end
  local cli = require "codeassist.cli"
  local parser = require("argparse")("codeassist run " .. file)
    :description("Checks the preset's routes, like `codeassist doctor " .. file .. "`.")
  parser:flag("--test-provider", "Run the doctor on this preset (the old runner's flag).")
  parser:flag("--doctor", "The same as --test-provider.")
  cli.doctor_options(parser)
  local parsed = cli.parse(parser, args)
  parsed.preset = file
  return require("codeassist.doctor").main(cli.doctor_request(parsed, preset))
end

function M.run(file, args)
  local st = require("codeassist.fs").stat(file)
  if st and st.type ~= "file" then   -- a FIFO would block for ever
    errors.usage("run: '%s' is not a regular file (it is a %s)", file, st.type == "dir" and "folder" or "special file")
  end
  local chunk, err = loadfile(file)
  if not chunk and err:find("^cannot open") and not file:find("[/.]") then
    -- `codeassist run ollama_hybrid --test-provider`: a built-in preset by name
    local ok, value = pcall(require, "presets." .. file)
    if ok then return M.run_preset(file, value, args) end
  end
  if not chunk then
    if err:find("^cannot open") then
      errors.usage("run: cannot open '%s': %s", file,
        err:match(": ([^:]+)$") or "no such file")
    end
    errors.usage("%s", err)   -- a syntax error: "file:line: message"
  end

  local dir = folder_of(file)
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path

  arg = { [0] = file, [-1] = "codeassist run" }
  for i, a in ipairs(args) do arg[i] = a end

  -- through C, so that error(msg, 2) at the script's top level is still the script's
  local result = require("codeassist.host").call(chunk, unpack(args, 1, #args))
  M.finish_tasks()
  if result == nil or result == true then return 0 end
  if result == false then return 1 end
  if type(result) == "number" and result >= 0 and result <= 255 and result % 1 == 0 then
    return result
  end
  if type(result) == "table" or type(result) == "function" then
    return M.run_preset(file, result, args)
  end
  errors.usage("%s returned a %s; a script may return nothing, a boolean, or an exit "
    .. "code from 0 to 255", file, type(result))
end

return M
