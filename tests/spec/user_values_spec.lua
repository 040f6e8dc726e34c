-- Values a user controls — flags, the environment, the config file, preset files and their
-- hooks — never end in an internal error (exit 3), a hang or a printed secret: each gets a
-- clear message and exit 2 (or a working run). Found by trying to break it as a user would.
local support = require "support"
local clock = require "codeassist.clock"

local SECRET = "sk-ant-SECRET123"

-- Runs the binary in dir with nothing reachable unless env says otherwise.
local function run(dir, args, env)
  env = env or {}
  local e = { NO_COLOR = "1", OLLAMA_HOST = "127.0.0.1:1", ANTHROPIC_API_KEY = false, ANTHROPIC_BASE_URL = false,
              ANTHROPIC_AUTH_TOKEN = false }
  for k, v in pairs(env) do e[k] = v end
  local t0 = clock.monotonic()
  local r = support.codeassist(args, { cwd = dir, env = e, timeout = 20 })
  r.seconds = clock.monotonic() - t0
  return r
end

local function project(yaml_text, files)
  local dir = support.tmpdir()
  if yaml_text then support.write(dir .. "/.claude/autonomous.yml", yaml_text) end
  for name, text in pairs(files or {}) do support.write(dir .. "/" .. name, text) end
  return dir
end

local function no_internal_error(r)
  assert.are_not.equal(3, r.code, r.stderr)
  assert.not_matches("internal error", r.stderr)
  assert.not_matches("stack traceback", r.stderr)
end

describe("values a user controls", function()
  teardown(support.cleanup)

  it("flags: an infinite VRAM is refused, never encoded", function()
    local dir = project()
    for _, args in ipairs{ { "doctor", "ollama_only", "--vram", "inf", "--json" }, { "models", "--vram", "inf", "--json" },
                           { "doctor", "--vram", "-inf" }, { "doctor", "--vram", "nan" } } do
      local r = run(dir, args)
      assert.are.equal(2, r.code, table.concat(args, " "))
      assert.matches("%-%-vram: expected a number greater than 0", r.stderr)
    end
  end)

  it("config: an empty mapping changes nothing; an empty pool is an error", function()
    local r = run(project("providers: {}\ngates: {}\n"), { "doctor", "ollama_only", "--json" })
    no_internal_error(r)
    local doc = require("cjson").decode(r.stdout)
    assert.are.equal(9, #doc.gates)                               -- the default gates are all there
    r = run(project("providers:\n  ollama: {}\n"), { "doctor", "ollama_only" })
    assert.matches("Ollama %(http://127%.0%.0%.1:1%)", r.stdout)   -- OLLAMA_HOST still counts
    r = run(project("providers:\n  ollama:\n    base_url: []\n"), { "doctor", "ollama_only" })
    assert.are.equal(2, r.code)
    assert.matches("providers%.ollama%.base_url: needs at least 1 item", r.stderr)
    r = run(project("providers:\n  ollama:\n    base_url: [http://a:1, http://a:1]\n"), { "doctor" })
    assert.are.equal(2, r.code)
    assert.matches("'http://a:1' is listed twice", r.stderr)
  end)

  it("credentials: a pasted line ending is dropped, anything else unprintable is refused", function()
    local claude = support.simulator("--flavor anthropic --api-key " .. SECRET)
    local dir = project()
    local r = run(dir, { "doctor", "claude", "--probe" }, { ANTHROPIC_API_KEY = SECRET .. "\r\n", ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    r = run(dir, { "doctor", "claude", "--probe" }, { ANTHROPIC_API_KEY = "sk-ant\nX: y", ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(2, r.code)
    assert.matches("ANTHROPIC_API_KEY contains a space or a control character", r.stderr)
    assert.not_matches("sk%-ant", r.stderr)
    r = run(project('providers:\n  ollama:\n    api_key: "k\\nX: y"\n'), { "models" })
    assert.are.equal(2, r.code)
    assert.matches("providers%.ollama%.api_key: must not contain spaces, line breaks or control characters", r.stderr)
    claude:stop()
  end)

  it("presets: cycles, misuse of define, and hooks that overflow or scribble on ctx", function()
    local dir = project(nil, {
      ["self.lua"] = 'return require("codeassist.preset").define{ extends = "self.lua" }',
      ["a.lua"] = 'return { extends = "b.lua" }', ["b.lua"] = 'return { extends = "a.lua" }',
      ["loop.lua"] = 'local r = { provider = "ollama" }; r.fallback = r; return { routes = { review = r } }',
      ["empty.lua"] = 'return require("codeassist.preset").define()',
      ["deep.lua"] = 'local function f(n) return 1 + f(n + 1) end\nreturn { route = function() return f(1) end }',
      ["deepcfg.lua"] = 'local function f(n) return 1 + f(n + 1) end\nreturn function(cfg) return f(1) end',
      ["scribble.lua"] = 'return { route = function(g, ctx) ctx.route.provider = "zzz"; ctx.plan.routes = nil end }',
      ["chain.lua"] = 'local r = "claude"\nfor i = 1, 300 do r = { provider = "claude", fallback = r } end\n'
        .. 'return { route = function() return r end }',
    })
    local function doctor(file) return run(dir, { "doctor", file }) end
    local r = doctor("self.lua")
    assert.are.equal(2, r.code)
    assert.matches("extends itself through .*self%.lua %(a cycle%)", r.stderr)
    r = doctor("a.lua")
    assert.are.equal(2, r.code)
    assert.matches("a cycle", r.stderr)
    r = doctor("loop.lua")
    assert.are.equal(2, r.code)
    assert.matches("routes%.review%.fallback: refers to itself %(a cycle%)", r.stderr)
    r = doctor("empty.lua")
    assert.are.equal(2, r.code)
    assert.matches("empty%.lua: preset%.define: give a table", r.stderr)
    for _, f in ipairs{ "deep.lua", "deepcfg.lua" } do
      r = doctor(f)
      assert.are.equal(2, r.code, f)
      assert.matches(f:gsub("%p", "%%%0") .. ":1: stack overflow", r.stderr)
    end
    r = doctor("scribble.lua")
    no_internal_error(r)
    assert.matches("Gates:", r.stdout)                              -- the plan was not changed
    r = doctor("chain.lua")
    assert.are.equal(2, r.code)
    assert.matches("nested more than 32 levels deep", r.stderr)
    assert.is_true(r.seconds < 5, "a long chain is checked in linear time")
  end)

  it("an edited built-in preset on CODEASSIST_PATH is the user's file", function()
    local dir = project(nil, { ["lp/presets/claude.lua"] = 'error("my edit broke it")' })
    local r = run(dir, { "doctor", "claude" }, { CODEASSIST_PATH = dir .. "/lp" })
    assert.are.equal(2, r.code)
    assert.matches("presets/claude%.lua:1: my edit broke it", r.stderr)
  end)

  it("library calls with wrong arguments blame the script's line", function()
    local dir = project(nil, {
      ["m.lua"] = 'local http = require "codeassist.http"\nhttp.request{ url = "http://127.0.0.1:1", method = 5 }',
      ["r.lua"] = 'local retry = require "codeassist.retry"\nretry.call(function() end, { attempts = 0/0 })',
      ["t.lua"] = 'local tty = require "codeassist.tty"\ntty.columns(nil)',
    })
    for file, msg in pairs{ ["m.lua"] = "http%.request: method must be a string", ["r.lua"] = "retry%.call: attempts must be a finite number",
                             ["t.lua"] = "tty%.columns: expected a list of rows" } do
      local r = run(dir, { "run", file })
      assert.are.equal(2, r.code, file)
      assert.matches("^codeassist: " .. file:gsub("%p", "%%%0") .. ":2: " .. msg, r.stderr)
    end
  end)

  it("YAML aliases of aliases do not blow up", function()
    local lines = { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" }
    for i = 1, 9 do lines[#lines + 1] = ("a%d: &a%d [%s]"):format(i, i, ("*a" .. (i - 1) .. ", "):rep(9) .. "*a" .. (i - 1)) end
    lines[#lines + 1] = "safety:\n  forbidden: *a0"
    local r = run(project(table.concat(lines, "\n") .. "\n"), { "doctor", "claude" })
    no_internal_error(r)
    assert.is_true(r.seconds < 10, "took " .. r.seconds .. " s")
    assert.matches("a9: unknown key", r.stderr)
  end)

  it("a FIFO as the config or a preset is refused instead of read for ever", function()
    local dir = project()
    support.sh("mkdir -p .claude && mkfifo .claude/autonomous.yml && mkfifo p.lua", { cwd = dir })
    local r = run(dir, { "doctor" })
    assert.are.equal(2, r.code)
    assert.matches("not a regular file", r.stderr)
    support.sh("rm .claude/autonomous.yml", { cwd = dir })
    r = run(dir, { "doctor", "./p.lua" })
    assert.are.equal(2, r.code)
    assert.matches("not a regular file", r.stderr)
    r = run(dir, { "run", "p.lua" })
    assert.are.equal(2, r.code)
    assert.matches("not a regular file", r.stderr)
  end)

  it("--repo that is not a folder is named by every command that takes it", function()
    local dir = project(nil, { ["file"] = "x\n" })
    for _, args in ipairs{ { "runs", "--repo", "nope" }, { "report", "--repo", "file" }, { "whatif", "latest", "claude", "--repo", "nope" },
                           { "run", "ollama_only", "--issue", "1", "--repo", "nope" } } do
      local r = run(dir, args)
      assert.are.equal(2, r.code, table.concat(args, " ") .. ": " .. r.stderr)
      assert.matches("%-%-repo " .. args[#args] .. ": " .. (args[#args] == "file" and "not a folder" or "no such folder"), r.stderr)
    end
  end)

  it("a preset file that forgot its `return` is named, not run as a script that did nothing", function()
    local dir = project(nil, {
      ["presets/mine.lua"] = 'local preset = require "codeassist.preset"\n'
        .. 'local p = preset.extend("ollama_hybrid", { description = "mine" })\n',
      ["tool.lua"] = 'local preset = require "codeassist.preset"\n'
        .. 'print(preset.define{ name = "x", default_route = { provider = "ollama", model = "m" } }.name)\n' })
    for _, flags in ipairs{ { "--issue", "3" }, { "--issue=3" }, { "--test-provider" }, { "--issue-file", "x.md" } } do
      local r = run(dir, { "run", "presets/mine.lua", unpack(flags) })
      assert.are.equal(2, r.code, table.concat(flags, " "))
      assert.matches("presets/mine.lua made a preset %(at presets/mine.lua:2%) but returned nothing", r.stderr)
      assert.matches("end the file with `return", r.stderr)
    end
    -- a script that makes a preset to look at it is still a script: with its own flags (a
    -- --dry-run of its own), or loop flags after `--`, or a preset made in another file
    for _, args in ipairs{ { "--verbose" }, { "--dry-run" }, { "--resume" }, { "--", "--issue", "3" } } do
      local r = run(dir, { "run", "tool.lua", unpack(args) })
      assert.are.equal(0, r.code, table.concat(args, " ") .. ": " .. r.stderr)
      assert.matches("^x\n", r.stdout)
    end
    support.write(dir .. "/other.lua", 'require "presets.ollama_hybrid"\n'
      .. 'print(pcall(require("codeassist.preset").define, 42))\n')
    local r = run(dir, { "run", "other.lua", "--issue", "3" })
    assert.are.equal(0, r.code, r.stderr)
  end)

  it("never prints credentials from a URL, nor a registered secret in --json", function()
    local sim = support.simulator()
    local url = sim.url:gsub("^http://", "http://user:" .. SECRET .. "@")
    local dir = project(("providers:\n  ollama:\n    base_url: %s\n"):format(url), {
      ["p.lua"] = 'return { name = os.getenv("ANTHROPIC_API_KEY"), default_route = { provider = "ollama", model = "nope" } }' })
    for _, args in ipairs{ { "doctor", "p.lua" }, { "doctor", "p.lua", "--json" }, { "models" }, { "models", "--json" } } do
      local r = run(dir, args, { ANTHROPIC_API_KEY = SECRET })
      no_internal_error(r)
      assert.not_matches("SECRET123", r.stdout .. r.stderr, table.concat(args, " "))
    end
    sim:stop()
  end)
end)
