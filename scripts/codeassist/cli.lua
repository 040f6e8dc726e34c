-- The command line: global flags, subcommands, dispatch. Each command's work lives in its
-- own module, loaded only when that command runs, so start-up stays flat.
local errors = require "codeassist.errors"

local M = {}

local PROGRAM = "codeassist"

-- Global flags that take a value; the C host has already acted on them (see main.c).
local GLOBAL_WITH_VALUE = { ["--lua-path"] = true }
-- `run PRESET`'s own options (run_file.lua), named when someone puts them before the preset
local LOOP_OPTIONS = {}
for _, o in ipairs{ "--issue", "--issue-file", "--repo", "--config", "--dry-run", "--supervised", "--max-iterations",
                    "--target-score", "--vram", "--route", "--trace", "--resume", "--json", "--record", "--replay",
                    "--test-provider", "--doctor" } do
  LOOP_OPTIONS[o] = true
end

local EPILOG = [[
Exit codes:
  0    success (run PRESET: the target reached and the pull request verified)
  1    goal not met (BLOCKED, a critical route unavailable, doctor found a problem)
  2    usage or configuration error, or an error in your Lua file
  3    internal error (a bug in codeassist: rerun with --debug and report it)
  130  interrupted (first Ctrl-C stops cleanly, the second at once)

Environment:
  CODEASSIST_PATH   folders searched for library modules before the built-in ones
  CODEASSIST_DEBUG  set to 1 for tracebacks, like --debug
  NO_COLOR          disables colours, like --no-color
  ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL   Claude's key and server
  OLLAMA_HOST       the Ollama server when the config sets no providers.ollama.base_url

First steps: codeassist init, then codeassist doctor presets/mine.lua, then
codeassist run presets/mine.lua --issue N.]]

local function versions_text()
  local v = require("codeassist.host").versions()
  return ("%s %s\n%s\nlibcurl %s (%s)\nlibyaml %s"):format(
    PROGRAM, v.codeassist, jit and jit.version or v.luajit, v.libcurl, v.ssl, v.libyaml)
end

-- "--vram" -> a converter that takes only numbers > 0 (0 would mean "no limit" or nonsense).
function M.positive(flag, max)
  return function(text)
    local n = tonumber(text)
    if not n or n ~= n or n <= 0 or n == math.huge or (max and n > max) then
      return nil, ("%s: expected a number greater than 0%s, found '%s'"):format(flag,
        max and (" and at most " .. max) or "", text)
    end
    return n
  end
end

-- The global flags again on every command, so `codeassist doctor --debug` works too (the C
-- host has already acted on them; see prescan in main.c).
function M.command_flags(cmd)
  cmd:flag("--debug"):hidden(true)
  cmd:flag("--no-color"):hidden(true)
  cmd:option("--lua-path"):hidden(true)
end

-- "review=ollama:qwen3-coder:30b" -> "review", {provider = "ollama", model = "qwen3-coder:30b"}
function M.parse_route_flag(text)
  local gate, provider, model = text:match("^([%w_]+)=([%a]+):?(.*)$")
  if not gate then
    return nil, ("--route: expected GATE=PROVIDER[:MODEL] (e.g. review=ollama:qwen3-coder), found '%s'"):format(text)
  end
  return { gate = gate, provider = provider, model = model ~= "" and model or nil }
end

-- The options of doctor, test-provider and `run PRESET --test-provider`: one list.
function M.doctor_options(cmd)
  cmd:option("--config", "The config file (default: .claude/autonomous.yml)."):argname("<file>")
  cmd:flag("--json", "Print the report as JSON.")
  cmd:flag("--probe", "Also send a one-token request along every route (tools gates must call a tool).")
  cmd:option("--timeout", "Seconds to wait for each server check (default 5); with --probe, also the most a "
    .. "probe may take in all, unless --probe-timeout is given."):argname("<s>")
    :convert(M.positive("--timeout", 3600))
  cmd:option("--probe-timeout", "Seconds a probe may take in all, retries included (default: --timeout when it is "
    .. "given, else 120: a cold model load is slow)."):argname("<s>"):convert(M.positive("--probe-timeout", 86400))
  cmd:option("--vram", "GPU memory in GB, for the fit checks (else providers.ollama.vram_gb)."):argname("<gb>")
    :convert(M.positive("--vram"))
  cmd:option("--route", "Route a gate for this run: GATE=PROVIDER[:MODEL]; beats the preset. Repeatable.")
    :argname("<gate=provider[:model]>"):count("*"):convert(M.parse_route_flag)
  cmd:option("--target-score", "The score a run would aim for (beats the preset), for the check that optional gates "
    .. "scoring 0 leave it within reach."):argname("<n>"):convert(M.positive("--target-score", 100))
  M.command_flags(cmd)
end

-- argparse reads "-5" as an option: glue a value that looks like a negative number to its
-- option, so "--vram -5" is checked as a value ("expected a number greater than 0").
local function glue_negative_values(argv)
  local out, i = {}, 1
  while i <= #argv do
    local a, nxt = argv[i], argv[i + 1]
    if a:match("^%-%-[%w-]+$") and nxt and (nxt:match("^%-[%d.]") or nxt:lower():match("^%-inf") or nxt:lower():match("^%-nan")) then
      out[#out + 1] = a .. "=" .. nxt
      i = i + 2
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end
M.glue_negative_values = glue_negative_values

-- Parses with argparse, reporting a mistake with the usage of the command it concerns
-- (`codeassist doctor --frob` shows doctor's usage, not the top level's).
function M.parse(parser, argv)
  parser.error = function(which, message)
    io.stderr:write(which:get_usage(), "\n")
    errors.usage("%s", message)
  end
  return parser:parse(glue_negative_values(argv))
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
    :summary("Run the development loop with a preset (run ollama_hybrid --issue 12), or a Lua script.")
    :description("Runs FILE like `lua FILE`: the arguments after FILE reach it as `...` and "
      .. "in the global `arg` (arg[0] is FILE). The built-in modules (codeassist.fs, "
      .. "codeassist.proc, codeassist.yaml, codeassist.term, codeassist.clock, cjson) are "
      .. "available through require. Options of `run` go before "
      .. "FILE; everything after FILE belongs to the script. A FILE that returns a preset — or the "
      .. "name of a built-in one (claude, escalate, ollama_hybrid, ollama_only, production, prototype) — "
      .. "runs the development loop: `codeassist run ollama_hybrid --issue 12`; "
      .. "`codeassist run PRESET --help` lists the loop's options and exit codes.")
  run:argument("file", "The Lua file to run.")
  run:argument("args", "Arguments handed to the file."):args("*")

  local function doctor_commands(summary, description)
    for _, cmd in ipairs{ parser:command("doctor"):summary(summary):description(description),
                          parser:command("test-provider"):summary("The same as doctor (the old runner's --test-provider).") } do
      cmd:argument("preset", "A preset file, or the name of a built-in preset (claude, escalate, ollama_hybrid, "
        .. "ollama_only, production, prototype). Without it, routes come from the config alone."):args("?")
      M.doctor_options(cmd)
    end
  end
  doctor_commands("Check that every gate's provider and model is reachable, present, capable and big enough.",
    "Exit 0 when a run could start: every required gate served (build and test run their commands whatever "
      .. "their model) and the target within reach of the gates that are; 1 otherwise; 2 for a config or usage error.")
  local m = parser:command("models")
    :summary("List the Ollama server's models and the setup guide's recommendations for your GPU.")
  m:option("--vram", "GPU memory in GB: show the recommendations for that much "
    .. "(default: providers.ollama.vram_gb, else 24)."):argname("<gb>"):convert(M.positive("--vram"))
  m:option("--config", "The config file (default: .claude/autonomous.yml)."):argname("<file>")
  m:option("--timeout", "Seconds to wait for the server.", "5"):argname("<s>"):convert(M.positive("--timeout"))
  m:flag("--json", "Print the models and recommendations as JSON.")
  M.command_flags(m)
  M.command_flags(run)
  local runs = parser:command("runs")
    :summary("List this repository's runs: id, issue, preset, outcome, cost, savings, age.")
  runs:option("--repo", "The repository (default: the current folder)."):argname("<dir>")
  runs:flag("--json", "Print the runs as JSON.")
  M.command_flags(runs)
  local rep = parser:command("report")
    :summary("Print one run's report (report.md), or the newest run's.")
  rep:argument("run_id", "The run (as `codeassist runs` lists it); default (or `latest`): the newest."):args("?")
  rep:option("--repo", "The repository (default: the current folder)."):argname("<dir>")
  rep:flag("--json", "Print report.json instead.")
  M.command_flags(rep)
  local whatif = parser:command("whatif")
    :summary("Re-price a finished run's ledger under other presets' routes: cost, savings, gates that move.")
  whatif:argument("run_id", "The run (as `codeassist runs` lists it), or `latest` for the newest.")
  whatif:argument("presets", "Presets to price the run under: built-in names or .lua files."):args("+")
  whatif:option("--repo", "The repository (default: the current folder)."):argname("<dir>")
  whatif:option("--config", "The config file (default: .claude/autonomous.yml in the repository)."):argname("<file>")
  whatif:flag("--json", "Print the comparison as JSON.")
  M.command_flags(whatif)
  local init = parser:command("init")
    :summary("Write a commented .claude/autonomous.yml and presets/mine.lua from what the Ollama server has.")
    :description("Asks the Ollama server what it has and writes a config and a preset that extends a built-in one, "
      .. "with a model chosen for each local gate. Existing files are never overwritten without --force (exit 2).")
  init:option("--repo", "The repository (default: the current folder)."):argname("<dir>")
  init:flag("--force", "Replace .claude/autonomous.yml and presets/mine.lua if they exist.")
  init:option("--preset", "The built-in preset to extend (default: ollama_hybrid with an Anthropic key and a "
    .. "server, ollama_only without a key, claude without a server)."):argname("<name>")
  init:option("--ollama", "The Ollama server (default: OLLAMA_HOST, else http://127.0.0.1:11434)."):argname("<url>")
  init:option("--vram", "GPU memory in GB: models that do not fit are not chosen, and it goes in the config.")
    :argname("<gb>"):convert(M.positive("--vram"))
  init:flag("--dry-run", "Print what it would write; write nothing.")
  M.command_flags(init)
  local completion = parser:command("completion")
    :summary("Print a bash or zsh completion script (commands, options, preset names).")
    :description("Print a completion script for SHELL, made from this command line: add "
      .. "`source <(codeassist completion bash)` to ~/.bashrc, or `source <(codeassist completion zsh)` "
      .. "after compinit in ~/.zshrc (or save it as _codeassist in a folder on $fpath). "
      .. "`make install` installs both.")
  completion:argument("shell", "bash or zsh."):choices{ "bash", "zsh" }
  M.command_flags(completion)
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
    if LOOP_OPTIONS[a:match("^[^=]*")] then
      -- `codeassist run --issue 3 mine.lua`: the loop's options belong to the preset
      errors.usage("run: %s comes before the file it is for; the loop's options go after the preset: "
        .. "codeassist run PRESET --issue N [options] (codeassist run PRESET --help lists them)", a)
    end
    j = j + (GLOBAL_WITH_VALUE[a] and 2 or 1)
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

-- What the doctor needs from parsed options (doctor, test-provider, run PRESET --test-provider).
function M.doctor_request(args, preset_value)
  local routes
  for _, r in ipairs(args.route or {}) do
    routes = routes or {}
    if routes[r.gate] then errors.usage("--route: %s is given twice; give each gate one route", r.gate) end
    routes[r.gate] = { provider = r.provider, model = r.model }
  end
  return {
    preset = args.preset, preset_value = preset_value, config = args.config, json = args.json,
    probe = args.probe, timeout = args.timeout, probe_timeout = args.probe_timeout or args.timeout,
    flags = { vram_gb = args.vram, routes = routes, target_score = args.target_score },
  }
end

function M.main(argv)
  local file, rest, no_color = plain_run(argv)
  if file then
    if no_color then require("codeassist.term").set_color(false) end
    return require("codeassist.run_file").run(file, rest)
  end

  local head, script_args = split_run_args(argv)
  local parser = build_parser()
  local args = M.parse(parser, head)

  if args.version then
    print(versions_text())
    return 0
  end
  if args.no_color then require("codeassist.term").set_color(false) end

  if args.command == "run" then
    return require("codeassist.run_file").run(args.file, script_args or {})
  end
  if args.command == "doctor" or args.command == "test-provider" then
    return require("codeassist.doctor").main(M.doctor_request(args))
  end
  if args.command == "runs" then
    return require("codeassist.runs_cmd").list{ repo = args.repo, json = args.json }
  end
  if args.command == "report" then
    return require("codeassist.runs_cmd").report{ repo = args.repo, id = args.run_id, json = args.json }
  end
  if args.command == "whatif" then
    return require("codeassist.whatif").main{ repo = args.repo, config = args.config, id = args.run_id,
                                              presets = args.presets, json = args.json }
  end
  if args.command == "init" then
    return require("codeassist.init_cmd").main{ repo = args.repo, force = args.force, preset = args.preset,
                                            ollama = args.ollama, vram_gb = args.vram, dry_run = args.dry_run }
  end
  if args.command == "completion" then
    io.stdout:write(require("codeassist.completion").script(parser, args.shell))
    return 0
  end
  if args.command == "models" then
    return require("codeassist.models").main{ vram_gb = args.vram, config = args.config, timeout = args.timeout,
                                              json = args.json }
  end
  io.stderr:write(parser:get_help(), "\n")
  return 2
end

return M
