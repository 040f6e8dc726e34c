-- The command line: global flags, subcommands, dispatch. Each command's work lives in its
-- own module, loaded only when that command runs, so start-up stays flat.
local errors = require "codeassist.errors"

local M = {}

local PROGRAM = "codeassist"

-- Global flags that take a value; the C host has already acted on them (see main.c).
local GLOBAL_WITH_VALUE = { ["--lua-path"] = true }

local EPILOG = [[
Exit codes:
  0    success
  1    goal not met (target score missed, BLOCKED, doctor found a problem)
  2    usage or configuration error, or an error in your Lua file
  3    internal error (a bug in codeassist: rerun with --debug and report it)
  130  interrupted (first Ctrl-C stops cleanly, the second at once)

Environment:
  CODEASSIST_PATH   folders searched for library modules before the built-in ones
  CODEASSIST_DEBUG  set to 1 for tracebacks, like --debug
  NO_COLOR          disables colours, like --no-color]]

local function versions_text()
  local v = require("codeassist.host").versions()
  return ("%s %s\n%s\nlibcurl %s (%s)\nlibyaml %s"):format(
    PROGRAM, v.codeassist, jit and jit.version or v.luajit, v.libcurl, v.ssl, v.libyaml)
end

local function build_parser()
  local argparse = require "argparse"
  local parser = argparse(PROGRAM, "Autonomous development loops on a repository, with "
      .. "Claude and local Ollama models.")
    :epilog(EPILOG)
    :command_target("command")
    :require_command(false)
    :help_max_width(100)
  parser:flag("--version", "Print the versions of codeassist, LuaJIT, libcurl and libyaml.")
  parser:flag("--debug", "Show Lua tracebacks with errors (also CODEASSIST_DEBUG=1).")
  parser:flag("--no-color", "Never colour the output (also NO_COLOR=1).")
  parser:option("--lua-path", "Load library modules from DIR before the built-in ones.")
    :argname("<dir>")

  local run = parser:command("run")
    :summary("Run a Lua file (a script or a preset) with the runtime API.")
    :description("Runs FILE like `lua FILE`: the arguments after FILE reach it as `...` and "
      .. "in the global `arg` (arg[0] is FILE). The built-in modules (codeassist.fs, "
      .. "codeassist.proc, codeassist.yaml, codeassist.term, codeassist.clock, cjson) are "
      .. "available through require. Options of `run` go before "
      .. "FILE; everything after FILE belongs to the script.")
  run:argument("file", "The Lua file to run.")
  run:argument("args", "Arguments handed to the file."):args("*")

  local function doctor_options(cmd)
    cmd:argument("preset", "A preset file, or the name of a built-in preset (claude, ollama_hybrid, "
      .. "ollama_only, production, prototype). Without it, routes come from the config alone."):args("?")
    cmd:option("--config", "The config file.", ".claude/autonomous.yml"):argname("<file>")
    cmd:flag("--json", "Print the report as JSON.")
    cmd:flag("--probe", "Also send a one-token request per distinct route (tools gates must call a tool).")
    cmd:option("--timeout", "Seconds to wait for each server check.", "5"):argname("<s>")
      :convert(tonumber)
    cmd:option("--vram", "GPU memory in GB, for the fit checks (else providers.ollama.vram_gb)."):argname("<gb>")
      :convert(tonumber)
  end
  doctor_options(parser:command("doctor")
    :summary("Check that every gate's provider and model is reachable, present, capable and big enough.")
    :description("Exit 0 when every required route is usable, 1 otherwise, 2 for a config error."))
  doctor_options(parser:command("test-provider")
    :summary("The same as doctor (the old runner's --test-provider)."))

  local m = parser:command("models")
    :summary("List the Ollama server's models and the setup guide's recommendations for your GPU.")
  m:option("--vram", "GPU memory in GB: show the recommendations for that much.", "24"):argname("<gb>")
    :convert(tonumber)
  m:option("--config", "The config file.", ".claude/autonomous.yml"):argname("<file>")
  m:option("--timeout", "Seconds to wait for the server.", "5"):argname("<s>"):convert(tonumber)
  return parser
end

-- Splits argv into the part argparse parses and the arguments of a script run with
-- `run FILE ...`, which must reach the script untouched (even `--issue 12` or `--help`).
local function split_run_args(argv)
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then i = i + 1; break end
    if a:sub(1, 1) ~= "-" then break end
    i = i + (GLOBAL_WITH_VALUE[a] and 2 or 1)
  end
  if argv[i] ~= "run" then return argv, nil end
  local j = i + 1
  while j <= #argv do
    local a = argv[j]
    if a == "--" then
      j = j + 1
      break
    end
    if a:sub(1, 1) ~= "-" or a == "-" then break end
    j = j + 1
  end
  if j > #argv then return argv, nil end
  local head, rest = {}, {}
  for k = 1, j do head[#head + 1] = argv[k] end
  for k = j + 1, #argv do rest[#rest + 1] = argv[k] end
  return head, rest
end

-- The common case, `[--debug|--no-color|--lua-path DIR] run FILE ...`, needs no parser:
-- skipping argparse keeps start-up flat. Anything else goes through the full parser.
local function plain_run(argv)
  local i, no_color = 1, false
  while argv[i] == "--debug" or argv[i] == "--no-color" or argv[i] == "--lua-path" do
    no_color = no_color or argv[i] == "--no-color"
    i = i + (GLOBAL_WITH_VALUE[argv[i]] and 2 or 1)
  end
  local file = argv[i + 1]
  if argv[i] ~= "run" or not file or file:sub(1, 1) == "-" then return nil end
  return file, { select(i + 2, unpack(argv)) }, no_color
end

local function usage_error(parser, message)
  io.stderr:write(parser:get_usage(), "\n")
  errors.usage("%s", message)
end

function M.main(argv)
  local file, rest, no_color = plain_run(argv)
  if file then
    if no_color then require("codeassist.term").set_color(false) end
    return require("codeassist.run_file").run(file, rest)
  end

  local head, script_args = split_run_args(argv)
  local parser = build_parser()
  local ok, args = parser:pparse(head)
  if not ok then usage_error(parser, args) end

  if args.version then
    print(versions_text())
    return 0
  end
  if args.no_color then require("codeassist.term").set_color(false) end

  if args.command == "run" then
    return require("codeassist.run_file").run(args.file, script_args or {})
  end
  if args.command == "doctor" or args.command == "test-provider" then
    local config_given = false
    for _, a in ipairs(argv) do if a == "--config" or a:find("^%-%-config=") then config_given = true end end
    return require("codeassist.doctor").main{
      preset = args.preset, config = config_given and args.config or nil, json = args.json,
      probe = args.probe, timeout = args.timeout, vram_gb = args.vram,
    }
  end
  if args.command == "models" then
    return require("codeassist.models").main{ vram_gb = args.vram, config = args.config, timeout = args.timeout }
  end
  io.stderr:write(parser:get_help(), "\n")
  return 2
end

return M
