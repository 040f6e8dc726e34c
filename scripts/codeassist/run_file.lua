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

-- A file that returns a preset runs the development loop with it:
--   codeassist run PRESET --issue N | --issue-file F [--repo DIR] [--config F] [--dry-run]
--                  [--supervised] [--max-iterations N] [--target-score N]
-- `--test-provider` (the old runner's flag, also `--doctor`) runs the doctor instead and takes
-- the doctor's options.
function M.run_preset(file, preset, args)
  local cli = require "codeassist.cli"
  for _, a in ipairs(args) do
    if a == "--test-provider" or a == "--doctor" then
      local parser = require("argparse")("codeassist run " .. file .. " --test-provider"):help_max_width(100)
        :description("Checks the preset's routes, like `codeassist doctor " .. file .. "`.")
      parser:flag("--test-provider", "Run the doctor on this preset (the old runner's flag).")
      parser:flag("--doctor", "The same as --test-provider.")
      cli.doctor_options(parser)
      local parsed = cli.parse(parser, args)
      parsed.preset = file
      return require("codeassist.doctor").main(cli.doctor_request(parsed, preset))
    end
  end
  local parser = require("argparse")("codeassist run " .. file)
    :help_max_width(100)
    :description("Runs the development loop with this preset: implements the issue with the agent, runs the "
      .. "quality gates, feeds their findings back, and opens a verified pull request at the target score. "
      .. "--test-provider (or --doctor) instead checks the preset's routes, as `codeassist doctor` does.")
    :epilog("Exit codes:\n"
      .. "  0    done: the target was reached and the pull request (merge request) verified\n"
      .. "  1    BLOCKED (max iterations reached, or stopped), or a critical route unavailable\n"
      .. "  2    usage or configuration error\n"
      .. "  3    internal error (a bug in codeassist: rerun with --debug and report it)\n"
      .. "  130  interrupted")
  parser:mutex(
    parser:option("--issue", "The issue number on GitHub (gh) or GitLab (glab), chosen from the remote."):argname("<n>")
      :convert(function(v) return v:match("^%d+$") and tonumber(v) or nil, ("--issue: expected a number, found '%s'"):format(v) end),
    parser:option("--issue-file", "A Markdown file holding the issue (title: its first heading); the work is "
      .. "committed on the feature branch and left there, with no push or pull request."):argname("<file>"))
  parser:option("--repo", "The repository to work in (default: the current folder)."):argname("<dir>")
  parser:option("--config", "The config file (default: .claude/autonomous.yml in the repository)."):argname("<file>")
  parser:flag("--dry-run", "Print the plan and run the doctor; no model is called, nothing changes.")
  parser:flag("--supervised", "Ask y/n/skip on the terminal between iterations.")
  parser:option("--max-iterations", "Iterations before the run stops BLOCKED (beats the preset)."):argname("<n>")
    :convert(cli.positive("--max-iterations", 100))
  parser:option("--target-score", "The score that ends the run (beats the preset)."):argname("<n>")
    :convert(cli.positive("--target-score", 100))
  parser:option("--vram", "GPU memory in GB, for scheduling local models (else providers.ollama.vram_gb)."):argname("<gb>")
    :convert(cli.positive("--vram"))
  parser:option("--route", "Route a gate for this run: GATE=PROVIDER[:MODEL]; beats the preset. Repeatable.")
    :argname("<gate=provider[:model]>"):count("*"):convert(cli.parse_route_flag)
  parser:option("--trace", "Write every event of the run (routes, calls, switches, gate results) to this file as JSON lines.")
    :argname("<file>")
  parser:option("--resume", "Go on with a run that stopped (killed, interrupted, out of budget) from its last completed "
    .. "step: the newest run (also `latest`), or the one named (codeassist runs lists them)."):args("?"):argname("<run-id>")
  parser:flag("--json", "Print every event as one JSON object a line, for machines, instead of text.")
  parser:flag("--test-provider", "Check the preset's routes instead, as `codeassist doctor` does (the old runner's "
    .. "flag); the doctor's options follow."):hidden_name("--doctor")
  parser:mutex(
    parser:option("--record", "Keep every model exchange of this run in a new folder, to replay it later."):argname("<dir>"),
    parser:option("--replay", "Serve the model exchanges recorded with --record again: no model is called; the "
      .. "tools, builds and tests run for real."):argname("<dir>"))
  cli.command_flags(parser)
  local a = cli.parse(parser, args)
  local routes = cli.doctor_request(a).flags.routes
  local resume = a.resume and (a.resume[1] or true) or nil
  if not a.issue and not a.issue_file and not resume and not a.replay then   -- a replay knows its issue
    errors.usage("%s returned a preset: give the issue to work on with --issue N or --issue-file F "
      .. "(or --resume to go on with a run, --test-provider to check its routes); --help lists the options", file)
  end
  if resume and a.dry_run then errors.usage("--resume and --dry-run do not go together") end
  if resume and (a.record or a.replay) then
    errors.usage("--resume and --%s do not go together: a recording holds one run from its start", a.record and "record" or "replay")
  end
  if a.max_iterations and a.max_iterations % 1 ~= 0 then errors.usage("--max-iterations: expected a whole number") end
  return require("codeassist.loop").main{
    preset = file, preset_value = preset, issue = a.issue, issue_file = a.issue_file, repo = a.repo, config = a.config,
    dry_run = a.dry_run, supervised = a.supervised, trace = a.trace, resume = resume, json = a.json,
    record = a.record, replay = a.replay,
    flags = { target_score = a.target_score, max_iterations = a.max_iterations, vram_gb = a.vram, routes = routes },
  }
end

-- Flags that only the loop takes (a script's own flags may well be called --dry-run or
-- --resume): given to a file that made a preset on one of its own lines and returned nothing,
-- they mean its `return` is missing; run as a plain script it would end 0 having done nothing.
local LOOP_FLAGS = { ["--issue"] = true, ["--issue-file"] = true, ["--test-provider"] = true, ["--doctor"] = true }

local function check_forgotten_return(file, args)
  local preset = package.loaded["codeassist.preset"]
  local made = preset and preset.last_made
  if not made or made:gsub(":%d+$", "") ~= file then return end
  for _, a in ipairs(args) do
    if a == "--" then return end
    local flag = a:match("^%-%-[%w-]+")
    if LOOP_FLAGS[flag] then
      errors.usage("%s made a preset (at %s) but returned nothing, so there is no preset to run %s with: "
        .. "end the file with `return <the preset>` (e.g. `return preset.extend(...)`)", file, made, flag)
    end
  end
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
      local preset = require "codeassist.preset"
      local schema = require "codeassist.schema"
      local hint = not file:find("[/.]") and ((schema.did_you_mean(file, preset.BUILTIN) or "")
        .. " (built-in presets: " .. table.concat(preset.BUILTIN, ", ") .. ")") or ""
      local fs = require "codeassist.fs"
      for _, candidate in ipairs{ "presets/" .. file .. ".lua", file .. ".lua", "presets/" .. file } do
        if not file:find("/") and fs.stat(candidate) then
          hint = (" — did you mean %s?"):format(candidate)   -- `codeassist init` writes presets/mine.lua
          break
        end
      end
      errors.usage("run: cannot open '%s': %s%s", file, err:match(": ([^:]+)$") or "no such file", hint)
    end
    errors.usage("%s", err)   -- a syntax error: "file:line: message"
  end

  local dir = folder_of(file)
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path

  arg = { [0] = file, [-1] = "codeassist run" }
  for i, a in ipairs(args) do arg[i] = a end

  local made_before = package.loaded["codeassist.preset"]
  if made_before then made_before.last_made = nil end
  -- through C, so that error(msg, 2) at the script's top level is still the script's
  local result = require("codeassist.host").call(chunk, unpack(args, 1, #args))
  M.finish_tasks()
  if result == nil then check_forgotten_return(file, args) end
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
