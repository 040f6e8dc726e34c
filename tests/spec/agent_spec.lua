-- The agent against the simulator, on real files, real git and real bubblewrap: scripted
-- conversations on every provider path, every escape refused and audited, the guardrails in
-- the sandbox and without it, local models' mistakes recovered, and the context window kept.
local support = require "support"
local agent = require "codeassist.agent"
local config = require "codeassist.config"
local fs = require "codeassist.fs"
local sandbox = require "codeassist.agent.sandbox"
local workspace = require "codeassist.agent.workspace"
local guardrails = require "codeassist.guardrails"
local toolset = require "codeassist.agent.tools"

-- A git repository with a bug to fix and a test that says so.
local function repo()
  local dir = support.tmpdir() .. "/repo"
  support.write(dir .. "/calc.lua", "local M = {}\nfunction M.add(a, b)\n  return a - b\nend\nreturn M\n")
  support.write(dir .. "/test.sh", "#!/bin/sh\ngrep -q 'return a + b' calc.lua && echo PASS || { echo FAIL; exit 1; }\n")
  support.sh("git init -q -b feature/7-implement . && git -c user.name=t -c user.email=t@t add -A && "
    .. "git -c user.name=t -c user.email=t@t commit -qm init", { cwd = dir })
  return dir
end

local function cfg_for(opts)
  local path = support.write(support.tmpdir() .. "/autonomous.yml", "{}\n")
  local cfg = config.load{ path = path, env = function() return nil end }
  if opts.ollama then cfg.providers.ollama.base_url = opts.ollama end
  if opts.claude then
    cfg.providers.anthropic.base_url = opts.claude
    cfg.providers.anthropic.api_key = "sk-ant-secret-123"
  end
  if opts.protocol then cfg.providers.ollama.protocol = opts.protocol end
  cfg.agent.sandbox = opts.sandbox or cfg.agent.sandbox
  return cfg
end

local FIX = {
  { tool_calls = { { name = "read", input = { path = "calc.lua" } } } },
  { tool_calls = { { name = "edit", input = { path = "calc.lua", old_string = "return a - b", new_string = "return a + b" } } } },
  { tool_calls = { { name = "bash", input = { command = "sh test.sh" } } } },
  { text = "Fixed: add now adds." },
}

local function run_agent(cfg, route, dir, extra)
  local seen, audit = {}, {}
  local opts = { cfg = cfg, route = route, workspace = dir, phase = "implement",
    messages = { { role = "user", content = "Fix calc.add; the test is sh test.sh" } },
    on_event = function(ev) seen[#seen + 1] = ev end, audit = function(r) audit[#audit + 1] = r end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local r = agent.run(opts)
  return r, seen, audit
end

local function tool_results(r)
  local out = {}
  for _, m in ipairs(r.transcript) do
    if m.role == "user" and type(m.content) == "table" then
      for _, b in ipairs(m.content) do if b.type == "tool_result" then out[#out + 1] = b end end
    end
  end
  return out
end

describe("the agent", function()
  local sim, claude
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key sk-ant-secret-123")
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset(); claude:reset() end)

  for _, path in ipairs{
    { name = "Claude (Messages tool_use)", server = function() return claude end, cfg = function() return cfg_for{ claude = claude.url } end,
      route = { provider = "anthropic", model = "claude-sonnet-4-5" } },
    { name = "Ollama native (tools/tool_calls)", server = function() return sim end, cfg = function() return cfg_for{ ollama = sim.url } end,
      route = { provider = "ollama", model = "qwen3-coder" } },
    { name = "Ollama /v1/messages", server = function() return sim end,
      cfg = function() return cfg_for{ ollama = sim.url, protocol = "anthropic" } end,
      route = { provider = "ollama", model = "qwen3-coder" } },
  } do
    it("reads, edits and runs the test over " .. path.name .. ", and the file is really changed", function()
      local server = path.server()
      server:control("/_sim/scenario", { conversations = { { replies = FIX } } })
      local dir = repo()
      local r, seen, audit = run_agent(path.cfg(), path.route, dir)
      assert.are.equal("done", r.stop_reason, tostring(r.error))
      assert.are.equal(4, r.turns)
      assert.matches("return a %+ b", fs.read(dir .. "/calc.lua"))
      local results = tool_results(r)
      assert.are.equal(3, #results)
      assert.matches("^%s+1\tlocal M = {}", results[1].content)
      assert.matches("replaced 1 occurrence in calc%.lua %(line 3%)", results[2].content)
      assert.matches("^exit code 0\nPASS", results[3].content)
      assert.is_true(r.usage.output_tokens > 0)
      local tools = {}
      for _, ev in ipairs(seen) do if ev.type == "agent.tool" then tools[#tools + 1] = ev.tool end end
      assert.are.same({ "read", "edit", "bash" }, tools)
      assert.are.equal(4, #audit)   -- three tool calls and the stop
      assert.are.equal("allow", audit[3].decision)
      assert.are.equal("sh test.sh", audit[3].args.command)
      assert.are.equal("implement", audit[1].phase)
    end)
  end

  it("recovers a tool call printed as text (Qwen/Hermes <tool_call>)", function()
    sim:control("/_sim/scenario", { conversations = { { replies = {
      { text = 'Let me look.\n<tool_call>\n{"name": "read", "arguments": {"path": "calc.lua"}}\n</tool_call>' },
      { text = "It subtracts." } } } } })
    local r, seen = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("done", r.stop_reason)
    local recovered
    for _, ev in ipairs(seen) do if ev.type == "agent.recovered" then recovered = ev end end
    assert.are.equal("a tool call printed as text", recovered.how)
    assert.matches("return a %- b", tool_results(r)[1].content)
    -- the second request carried a real call and its result, not the text
    local second = sim:log()[2].body.messages
    assert.are.equal("read", second[#second - 1].tool_calls[1]["function"].name)
    assert.are.equal("tool", second[#second].role)
  end)

  it("answers bad JSON, an unknown tool and a schema violation with the schema, and goes on", function()
    sim:control("/_sim/scenario", { conversations = { { replies = {
      { tool_calls = { { name = "read", raw_input = '{"path": calc.lua' } } },
      { tool_calls = { { name = "delete_file", input = { path = "calc.lua" } } } },
      { tool_calls = { { name = "read", input = { path = 5 } } } },
      { text = "Giving up politely." } } } } })
    local r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("done", r.stop_reason)
    local res = tool_results(r)
    assert.matches("^Error: the input was not valid JSON .* Call read again with a JSON object: read%(path: string, limit%?: integer, offset%?: integer%)", res[1].content)
    assert.matches("^Error: there is no tool named 'delete_file'%. The tools are: read%(path: string", res[2].content)
    assert.matches("^Error: 'path' must be a string, not number; call it as read%(path: string", res[3].content)
    assert.is_true(res[3].is_error)
  end)

  it("stops with tool_loop when the same call keeps failing", function()
    sim:control("/_sim/scenario", { conversations = { { replies = {
      { tool_calls = { { name = "edit", input = { path = "calc.lua", old_string = "nope", new_string = "x" } } } } } } } })
    local r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("tool_loop", r.stop_reason)
    assert.matches("the same failing call edit, 3 times in a row", r.error)
    assert.are.equal(3, r.turns)
  end)

  it("gives every call of the stopping turn its result, so the transcript can be sent again", function()
    local bad = { name = "edit", input = { path = "calc.lua", old_string = "nope", new_string = "x" } }
    sim:control("/_sim/scenario", { conversations = { { replies = { { tool_calls = { bad, bad, bad, bad } } } } } })
    local r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("tool_loop", r.stop_reason)
    local last = r.transcript[#r.transcript]
    assert.are.equal(4, #last.content)
    assert.matches("not run: the agent stopped", last.content[4].content)
  end)

  it("stops with provider when the model answers with nothing, after asking once more", function()
    sim:control("/_sim/scenario", { conversations = { { replies = { { text = "" } } } } })
    local r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("provider", r.stop_reason)
    assert.matches("nothing, twice", r.error)
    assert.are.equal(2, r.turns)
  end)

  it("stops with max_turns, and with provider (the failure kept) when the server fails", function()
    sim:control("/_sim/scenario", { conversations = { { replies = { { tool_calls = { { name = "glob", input = { pattern = "*" } } } } } } } })
    local r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo(), { max_turns = 3 })
    assert.are.equal("max_turns", r.stop_reason)
    sim:fault{ match = { path = "/api/chat" }, kind = "status", status = 500, times = 5 }
    r = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("provider", r.stop_reason)
    assert.are.equal("http", r.failure.kind)
  end)

  it("keeps a conversation that would overflow a 4096-token window inside it", function()
    local dir = repo()
    local big = {}
    for i = 1, 120 do big[#big + 1] = ("line %d: local value_%d = compute(%d) -- some code"):format(i, i, i) end
    support.write(dir .. "/big.lua", table.concat(big, "\n") .. "\n")
    local replies = {}
    for _ = 1, 6 do replies[#replies + 1] = { tool_calls = { { name = "read", input = { path = "big.lua" } } } } end
    replies[#replies + 1] = { text = "Read it all." }
    sim:control("/_sim/scenario", { conversations = { { replies = replies } } })
    local r, seen = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, dir,
      { context_limit = 4096, max_tokens = 512 })
    assert.are.equal("done", r.stop_reason, tostring(r.error))
    local shortened = 0
    for _, ev in ipairs(seen) do if ev.type == "agent.context" then shortened = shortened + ev.shortened end end
    assert.is_true(shortened > 0, "old outputs were shortened")
    for _, entry in ipairs(sim:log()) do
      if entry.path == "/api/chat" then
        assert.are.equal(0, entry.truncated_messages)          -- Ollama dropped nothing
        assert.is_true(entry.body.options.num_ctx <= 4096)
        assert.is_true(entry.prompt_tokens + 512 <= 4096, "prompt " .. entry.prompt_tokens)
      end
    end
    assert.matches("lines left out to fit the context window", tool_results(r)[1].content)
  end)
end)

describe("the agent's tools", function()
  teardown(support.cleanup)

  local function env_for(dir, mode)
    local ws = assert(workspace.open(dir))
    return { ws = ws, sandbox = assert(sandbox.new{ root = ws.root, mode = mode or "auto" }),
             guard = guardrails.new{ cwd = ws.root, protected = { "main" }, forbidden = { "Generated by Claude" } } }
  end
  local function call(name, input, env)
    local tool = toolset.set()[name]
    return tool.run(input, env)
  end

  it("refuse every way out of the workspace", function()
    local dir = repo()
    local outside = support.tmpdir()
    support.write(outside .. "/secret.txt", "outside")
    local env = env_for(dir)
    for _, p in ipairs{ "../secret.txt", outside .. "/secret.txt", "/etc/passwd", "/proc/self/root/etc/passwd",
                        "calc.lua/../../x" } do
      local text, err = call("read", { path = p }, env)
      assert.is_nil(text, p)
      assert.matches("outside the repository", err, p)
    end
    -- a symlink the model plants is not followed out
    assert(call("bash", { command = "ln -s " .. outside .. " out && ln -s /etc etc" }, env))
    for _, p in ipairs{ "out/secret.txt", "etc/passwd" } do
      local text, err = call("read", { path = p }, env)
      assert.is_nil(text)
      assert.matches("outside the repository", err)
    end
    local _, err = call("write", { path = "out/new.txt", content = "x" }, env)
    assert.matches("outside the repository", err)
    assert.is_nil(fs.stat(outside .. "/new.txt"))
    -- a missing folder then .. cannot be used to reach the link
    for _, p in ipairs{ "nope/../out/secret.txt", "nope/../etc/passwd" } do
      local text, why = call("read", { path = p }, env)
      assert.is_nil(text, p)
      assert.matches("does not exist", why, p)
    end
    _, err = call("write", { path = "nope/../out/pwned.txt", content = "x" }, env)
    assert.is_truthy(err)
    assert.is_nil(fs.stat(outside .. "/pwned.txt"))
    -- git's own files are not the model's to write
    local _, why, extra = call("write", { path = ".git/hooks/pre-commit", content = "#!/bin/sh\necho hi" }, env)
    assert.matches("files under %.git are not for editing", why)
    assert.are.equal("deny", extra.decision)
    local listed = call("glob", { pattern = "**/*" }, env)
    assert.not_matches("secret", listed)
    _, err = call("glob", { pattern = "../*" }, env)
    assert.matches("must stay inside the repository", err)
  end)

  it("edit refuses a missing or repeated string, saying where", function()
    local dir = repo()
    local env = env_for(dir)
    local _, err = call("edit", { path = "calc.lua", old_string = "return a * b", new_string = "x" }, env)
    assert.matches("old_string was not found in calc%.lua", err)
    support.write(dir .. "/twice.txt", "a\nb\na\n")
    _, err = call("edit", { path = "twice.txt", old_string = "a", new_string = "c" }, env)
    assert.matches("appears 2 times in twice%.txt %(lines 1, 3%)", err)
    assert.matches("replaced 2 occurrences", call("edit", { path = "twice.txt", old_string = "a", new_string = "c", replace_all = true }, env))
    assert.are.equal("c\nb\nc\n", fs.read(dir .. "/twice.txt"))
  end)

  it("stay quick and safe on odd inputs: FIFOs, bad UTF-8, huge edits, deep globs, option-like paths", function()
    local dir = repo()
    local env = env_for(dir)
    support.sh("mkfifo pipe", { cwd = dir })
    local _, err = call("read", { path = "pipe" }, env)
    assert.matches("not a regular file", err)
    support.write(dir .. "/latin1.txt", "caf\233 cr\232me\n")
    local text = call("read", { path = "latin1.txt" }, env)
    assert.is_truthy(text)
    support.write(dir .. "/many.txt", ("a\n"):rep(200000))
    local t0 = require("codeassist.clock").monotonic()
    assert.matches("replaced 200000 occurrences", call("edit", { path = "many.txt", old_string = "a", new_string = "b", replace_all = true }, env))
    assert.is_true(require("codeassist.clock").monotonic() - t0 < 5, "edit is linear")
    support.sh("mkdir -p " .. ("d/"):rep(30), { cwd = dir })
    t0 = require("codeassist.clock").monotonic()
    assert.are.equal("no files match", call("glob", { pattern = "**/**/**/**/**/**/nomatch" }, env))
    assert.is_true(require("codeassist.clock").monotonic() - t0 < 5, "repeated ** is one **")
    -- without git, grep gets -- before the path: "-f/etc/passwd" is a path, not an option
    local plain = support.tmpdir()
    support.write(plain .. "/f.txt", "root\n")
    local penv = env_for(plain)
    _, err = call("grep", { pattern = "zzz", path = "-f/etc/passwd" }, penv)
    assert.is_truthy(err)
    assert.not_matches("root", err)
  end)

  it("grep uses a real engine, and read pages long files", function()
    local dir = repo()
    local env = env_for(dir)
    assert.matches("calc%.lua:3:  return a %- b", call("grep", { pattern = "return a [-+] b" }, env))
    assert.are.equal("no matches", call("grep", { pattern = "zzz" }, env))
    local _, err = call("grep", { pattern = "(" }, env)
    assert.matches("the search failed", err)
    local lines = {}
    for i = 1, 30 do lines[i] = "l" .. i end
    support.write(dir .. "/long.txt", table.concat(lines, "\n") .. "\n")
    local text = call("read", { path = "long.txt", offset = 10, limit = 5 }, env)
    assert.matches("^%s+10\tl10\n", text)
    assert.matches("%[lines 10%-14 of 30; read on with offset=15%]", text)
  end)

  it("bash runs sandboxed: no writes outside, no network, no keys, a timeout that ends everything", function()
    if not sandbox.probe().available then pending("bubblewrap cannot run here: " .. sandbox.probe().reason) return end
    local dir = repo()
    support.write(dir .. "/.claude/autonomous.yml", "{}\n")
    local outside = support.tmpdir()
    local listener = support.simulator()
    -- the workspace lies inside the home, which holds a key: the sandbox must still hide it
    local home = dir:match("^(.*)/repo$")
    support.write(home .. "/.netrc", "machine example.com password leak-netrc\n")
    local script = support.write(support.tmpdir() .. "/check.lua", ([[
local sandbox = require "codeassist.agent.sandbox"
local sb = assert(sandbox.new{ root = %q, mode = "required" })
for _, cmd in ipairs{ "touch %s/escaped; echo wrote=$?", "echo x > /tmp/in-sandbox; ls /tmp",
                      "curl -s -m 3 %s/api/version; echo curl=$?", "env", "cat /proc/1/environ | tr '\\0' '\\n'",
                      "ls -A $HOME | wc -l", "cat ]] .. home .. [[/.netrc; echo netrc=$?", "ls /run | wc -l",
                      "echo x >> .git/config; echo gitconfig=$?", "touch .git/hooks/pre-commit; echo hooks=$?",
                      "mv .git .git2; echo mvgit=$?", "echo /tmp > .git/commondir; echo commondir=$?",
                      "git -c user.name=a -c user.email=a@a commit -q --allow-empty -m x; echo commit=$?",
                      "echo 'providers: {}' > .claude/autonomous.yml; echo claude=$?", "rm -rf .claude; echo rmclaude=$?" } do
  local r = assert(sb:run(cmd, { timeout = 20 }))
  io.write("== ", cmd, "\n", r.stdout, r.stderr)
end
local r = assert(sb:run("sleep 60 & sleep 61; echo never", { timeout = 1 }))
io.write("== timeout ", tostring(r.timed_out), "\n")
local open = assert(sandbox.new{ root = %q, mode = "required", network = true })
r = assert(open:run("curl -s -m 5 -o /dev/null -w 'status=%%{http_code}' %s/api/version", { timeout = 20 }))
io.write("== network allowed ", r.stdout, "\n")
]]):format(dir, outside, listener.url, dir, listener.url))
    local r = support.codeassist({ "run", script }, { env = { ANTHROPIC_API_KEY = "sk-ant-leak-me", GH_TOKEN = "ghp_leak",
                                                               OLLAMA_API_KEY = "ollama-leak", HOME = home }, timeout = 60 })
    assert.are.equal(0, r.code, r.stderr)
    local out = r.stdout
    assert.matches("wrote=1", out)                                   -- read-only outside the workspace
    assert.is_nil(fs.stat(outside .. "/escaped"))
    assert.is_nil(fs.stat("/tmp/in-sandbox"))                        -- a private /tmp
    assert.matches("curl=7", out)                                    -- no network: connection refused
    assert.matches("== network allowed status=200", out)           -- agent.network: true
    assert.are.equal(1, #listener:log())                             -- and only then
    assert.not_matches("leak", out)                                  -- no key in any environment
    assert.matches("PATH=", out)
    assert.matches("== ls %-A %$HOME | wc %-l\n0\n", out)            -- not the user's home
    assert.matches("netrc=1", out)                                   -- even when the repository is inside it
    assert.matches("== ls /run | wc %-l\n0\n", out)                 -- no host sockets
    assert.matches("gitconfig=[12]", out)                            -- git's config and hooks stay as they are
    assert.matches("hooks=1", out)
    assert.matches("mvgit=1", out)                                   -- .git cannot be moved aside and replaced
    assert.matches("commondir=[12]", out)                            -- nor changed: the runtime commits
    assert.matches("commit=128", out)
    assert.matches("claude=[12]", out)                               -- the run's own configuration
    assert.matches("rmclaude=1", out)
    assert.is_truthy(fs.stat(dir .. "/.git/HEAD"))
    assert.are.equal("{}\n", fs.read(dir .. "/.claude/autonomous.yml"))
    assert.matches("== timeout true", out)
    listener:stop()
  end)

  for _, mode in ipairs{ "auto", "off" } do
    it("the guardrails hold in bash (" .. (mode == "off" and "without the sandbox" or "sandboxed") .. ") and are audited", function()
      local dir = repo()
      local env = env_for(dir, mode)
      for _, cmd in ipairs{ "git push -f origin x", "git push origin main", "git reset --hard", "sh -c 'git push --force'",
                            "git commit -am 'Generated by Claude'" } do
        local text, err, extra = call("bash", { command = cmd }, env)
        assert.is_nil(text, cmd)
        assert.matches("^refused by the guardrails: ", err, cmd)
        assert.are.equal("deny", extra.decision)
      end
      assert.matches("^exit code 0", call("bash", { command = "git status --short" }, env))
    end)
  end

  it("a refusal in a run is audited with its reason", function()
    local sim = support.simulator()
    sim:control("/_sim/scenario", { conversations = { { replies = {
      { tool_calls = { { name = "bash", input = { command = "git push --force origin feature/7-implement" } } } },
      { tool_calls = { { name = "read", input = { path = "/proc/self/root/etc/passwd" } } } },
      { text = "ok" } } } } })
    local r, seen, audit = run_agent(cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, repo())
    assert.are.equal("done", r.stop_reason)
    assert.are.equal("deny", audit[2].decision)
    assert.are.equal("path escape: /proc/self/root/etc/passwd", audit[2].reason)
    assert.are.equal("deny", audit[1].decision)
    assert.matches("force push %(%-%-force%)", audit[1].reason)
    assert.are.equal("git push --force origin feature/7-implement", audit[1].args.command)
    -- the same stream as JSON lines in a file
    local file = support.tmpdir() .. "/audit.jsonl"
    local write = agent.audit_file(file)
    for _, a in ipairs(audit) do write(a) end
    local lines = {}
    for line in fs.read(file):gmatch("[^\n]+") do lines[#lines + 1] = require("cjson").decode(line) end
    assert.are.equal(#audit, #lines)
    assert.are.equal("deny", lines[1].decision)
    assert.is_string(lines[1].time)
    local guard
    for _, ev in ipairs(seen) do if ev.type == "agent.guardrail" then guard = guard or ev end end
    assert.matches("force push", guard.reason)
    sim:stop()
  end)

  it("agent.sandbox: required refuses to run where bubblewrap cannot", function()
    local saved = sandbox.probe
    sandbox.probe = function() return { available = false, reason = "bubblewrap cannot run here (test)" } end
    local ok, r = pcall(run_agent, cfg_for{ ollama = "http://127.0.0.1:1", sandbox = "required" },
      { provider = "ollama", model = "m" }, repo())
    sandbox.probe = saved
    assert.is_true(ok, tostring(r))
    assert.are.equal("sandbox", r.stop_reason)
    assert.matches("agent%.sandbox is required", r.error)
  end)
end)

describe("the runtime's git", function()
  teardown(support.cleanup)

  it("pushes a feature branch to a local remote, and refuses protected branches and forbidden messages", function()
    local dir = repo()
    local remote = support.tmpdir() .. "/remote.git"
    support.sh("git init -q --bare " .. remote .. " && git remote add origin " .. remote, { cwd = dir })
    local audit = {}
    local g = require("codeassist.git").open(dir, { git_rules = { protected_branches = { "main" },
      commit_rules = { forbidden_patterns = { "Generated by Claude" }, auto_strip = true } } },
      { audit = function(r) audit[#audit + 1] = r end })
    -- a hook the model planted does not run when the runtime uses git
    support.write(dir .. "/.git/hooks/pre-push", "#!/bin/sh\ntouch " .. dir .. "/../hook-ran\n")
    support.sh("chmod +x .git/hooks/pre-push", { cwd = dir })
    assert(g:push("origin", "feature/7-implement"))
    assert.is_nil(fs.stat(dir .. "/../hook-ran"))
    assert.matches("feature/7%-implement", support.sh("git branch", { cwd = remote }).stdout)
    local _, err = g:push("origin", "main")
    assert.matches("'main' is a protected branch", err.message)
    -- a commit with a forbidden line: stripped by auto_strip
    support.write(dir .. "/n.txt", "1\n")
    support.sh("git add n.txt", { cwd = dir })
    assert(g:run{ "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ok" })
    support.write(dir .. "/n.txt", "2\n")
    support.sh("git add n.txt", { cwd = dir })
    local msg = assert(g:clean_message("feat: n\n\nGenerated by Claude"))
    assert.are.equal("feat: n", msg)
    -- a commit made behind the runtime's back with a forbidden message: the push is refused
    support.sh("git -c user.name=t -c user.email=t@t commit -qm 'Generated by Claude'", { cwd = dir })
    _, err = g:push("origin", "feature/7-implement")
    assert.matches("push refused: commit %x+: the commit message matches the forbidden pattern", err.message)
    _, err = g:run{ "push", "-f", "origin", "feature/7-implement" }
    assert.matches("refused by the guardrails: force push", err.message)
    local denied = 0
    for _, a in ipairs(audit) do if a.decision == "deny" then denied = denied + 1 end end
    assert.are.equal(3, denied)
  end)
end)

describe("tool calls printed as text", function()
  local recover = require "codeassist.agent.recover"
  local known = { read = toolset.set().read, bash = true }

  it("are read in the shapes local models' templates teach", function()
    local cases = {
      { '<tool_call>\n{"name": "read", "arguments": {"path": "a.c"}}\n</tool_call>', "read", "a.c" },        -- Qwen, Hermes
      { '<tool_call>{"name":"read","arguments":"{\\"path\\":\\"a.c\\"}"}</tool_call>', "read", "a.c" },     -- arguments as a string
      { '<|python_tag|>{"name": "read", "parameters": {"path": "a.c"}}', "read", "a.c" },                 -- Llama 3.1
      { '{"name": "read", "parameters": {"path": "a.c"}}', "read", "a.c" },                                -- Llama 3.2, the whole answer
      { '[TOOL_CALLS] [{"name": "read", "arguments": {"path": "a.c"}}]', "read", "a.c" },                 -- Mistral
      { '```json\n{"name": "read", "arguments": {"path": "a.c"}}\n```', "read", "a.c" },                  -- a fence, alone
      { '<tool_call>\n<function=read>\n<parameter=path>\na.c\n</parameter>\n</function>\n</tool_call>', "read", "a.c" },  -- Qwen3-Coder
      { '{"type": "function", "function": {"name": "read", "arguments": {"path": "a.c"}}}', "read", "a.c" },
    }
    for _, c in ipairs(cases) do
      local calls = recover.calls_in_text(c[1], known)
      assert.is_truthy(calls, c[1])
      assert.are.equal(c[2], calls[1].name, c[1])
      assert.are.equal(c[3], calls[1].input.path, c[1])
    end
    local calls, prose = recover.calls_in_text('Reading.\n<tool_call>{"name":"read","arguments":{"path":"x"}}</tool_call>\n'
      .. '<tool_call>{"name":"bash","arguments":{"command":"ls"}}</tool_call>', known)
    assert.are.equal(2, #calls)
    assert.are.equal("Reading.", prose)
  end)

  it("leave prose, unknown names and broken JSON alone", function()
    for _, text in ipairs{ "I fixed it.", '{"name": "rm", "arguments": {}}', "<tool_call>{not json}</tool_call>",
                           'Use {"name": "read"} like this.', "",
                           '{"name": "read", "version": "1.0.0"}',                                    -- a package.json, not a call
                           'The format is <tool_call>{"name":"bash","arguments":{"command":"rm -rf src"}}</tool_call> in Hermes templates.',
                           'I will read it.\n```json\n{"name": "read", "arguments": {"path": "a.c"}}\n```',   -- prose, then a fence
                           ("<tool_call>"):rep(3000) } do
      assert.is_nil(recover.calls_in_text(text, known), text:sub(1, 80))
    end
  end)
end)

describe("cancelling the agent", function()
  teardown(support.cleanup)

  it("ends its running command at once", function()
    local task = require "codeassist.task"
    local sim = support.simulator()
    sim:control("/_sim/scenario", { conversations = { { replies = {
      { tool_calls = { { name = "bash", input = { command = "echo $$ > pid; exec sleep 30" } } } } } } } })
    local dir = repo()
    local t = task.spawn(run_agent, cfg_for{ ollama = sim.url }, { provider = "ollama", model = "qwen3-coder" }, dir)
    local pid
    for _ = 1, 100 do
      task.sleep(0.05)
      pid = fs.read(dir .. "/pid")
      if pid then break end
    end
    assert.is_truthy(pid, "the command started")
    assert.are_not.equal("", support.sh("pgrep -f '^sleep 30$' || true").stdout)   -- seen from here while it runs
    local started = require("codeassist.clock").monotonic()
    task.cancel(t)
    local ok, err = task.join(t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.is_true(require("codeassist.clock").monotonic() - started < 2)
    -- no sleep of ours is left (inside the sandbox its pid differs; look for the command itself)
    local left = support.sh("pgrep -f '^sleep 30$' || true").stdout
    assert.are.equal("", left)
    sim:stop()
  end)
end)
