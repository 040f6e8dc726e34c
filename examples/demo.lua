-- A short tour of the runtime's built-in modules: `make demo` runs it, with the model
-- simulator started and its address in SIM_URL (tools/demo.sh).
--   ./codeassist run examples/demo.lua [WORKDIR]
-- Everything happens in a temporary folder (or WORKDIR) and touches nothing else.
local yaml  = require "codeassist.yaml"
local fs    = require "codeassist.fs"
local proc  = require "codeassist.proc"
local term  = require "codeassist.term"
local clock = require "codeassist.clock"
local host  = require "codeassist.host"
local cjson = require "cjson"

local colored = term.color("stdout")
local function paint(code, s) return colored and ("\27[" .. code .. "m" .. s .. "\27[0m") or s end
local function step(title) print("\n" .. paint("1", "== " .. title)) end
local function ok(s) print("  " .. paint("32", "✓") .. " " .. s) end
local function no(s) print("  " .. paint("31", "✗") .. " " .. s) end

local started = clock.monotonic()
local work = arg[1]
if not work then
  local r = assert(proc.run{ "mktemp", "-d", "/tmp/codeassist-demo-XXXXXX" })
  work = r.stdout:gsub("%s+$", "")
end
assert(fs.mkdir_p(work .. "/.claude"))

local v = host.versions()
print(("codeassist %s on LuaJIT %s, libcurl %s, libyaml %s"):format(
  v.codeassist, v.luajit:gsub("^LuaJIT ", ""), v.libcurl, v.libyaml))

step("yaml: a config file, read with positions, and a broken one")
local config_path = work .. "/.claude/autonomous.yml"
assert(fs.write_atomic(config_path, [[
target_score: 95
max_iterations: 5
providers:
  ollama:
    enabled: true
    base_url: http://localhost:11434
    model: qwen3-coder
]]))
local marks = {}
local config = assert(yaml.load_file(config_path, { marks = marks }))
ok(("target_score = %d, ollama model = %s (key at line %d)"):format(
  config.target_score, config.providers.ollama.model, marks[config.providers.ollama].keys.model.line))
for _, broken in ipairs{ "gates:\n  build: true\n\ttest: true\n", "a: 1\nb: 2\na: 3\n", "model: 'qwen3\n" } do
  local _, err = yaml.load(broken, { name = "broken.yml" })
  no(err)
end

step("fs: atomic writes and a workspace the agent cannot leave")
assert(fs.write_atomic(work .. "/state.json", cjson.encode({ iteration = 1, score = 72 })))
ok("state.json written atomically: " .. fs.read(work .. "/state.json"))
assert(proc.run{ "ln", "-sf", "/etc", work .. "/etc-link" })
for _, path in ipairs{ "src/main.c", "../outside.txt", "/etc/passwd", "etc-link/passwd" } do
  local real, err = fs.confine(work, path)
  if real then ok(path .. " -> " .. real) else no(err) end
end

step("proc: a command, and one that overruns its timeout")
local r = assert(proc.run{ "git", "--version" })
ok(("git --version -> %q, exit %d in %.0f ms"):format(r.stdout:gsub("%s+$", ""), r.code, r.duration * 1000))
r = assert(proc.run{ "sleep 10 & sleep 10; echo never", shell = true, timeout = 0.3 })
no(("sleep 10 (twice, with a grandchild) stopped after %.2f s: timed_out = %s, nothing left running")
  :format(r.duration, tostring(r.timed_out)))

step("term and clock")
ok(("stdout is %s; colour %s; width %d"):format(term.isatty("stdout") and "a terminal" or "not a terminal",
  colored and "on" or "off (NO_COLOR, --no-color, TERM=dumb or not a terminal)", term.width("stdout")))

local sim = os.getenv("SIM_URL")
if sim then
  local http, task, retry = require "codeassist.http", require "codeassist.task", require "codeassist.retry"
  local function post(path, doc) assert(http.request{ url = sim .. path, body = cjson.encode(doc) }):body() end

  step("http: a reply streamed token by token from the local model simulator (" .. sim .. ")")
  post("/_sim/faults", { { kind = "pace", seconds = 0.03, match = { path = "/api/chat" } } })
  local res = assert(http.request{ url = sim .. "/api/chat", stream = "ndjson",
    body = cjson.encode{ model = "qwen3-coder", messages = { { role = "user", content = "Say hello" } } },
    timeout = { connect = 5, first_byte = 60, idle = 30 } })
  io.write("  ")
  local last
  for obj in res:lines() do
    io.write(obj.message.content)
    io.stdout:flush()
    last = obj
  end
  print()
  if res.err then no(res.err.message) else
    ok(("done_reason=%s, %d prompt tokens, %d generated"):format(last.done_reason, last.prompt_eval_count, last.eval_count))
  end

  step("retry: a 429 with retry-after-ms, then success")
  post("/_sim/faults", { { kind = "status", status = 429, retry_after_ms = 200, match = { path = "/api/version" } } })
  local v = retry.call(function() return http.request{ url = sim .. "/api/version" } end, {
    on_retry = function(info) no(("%s; retrying in %.2f s (attempt %d)"):format(info.err.message, info.delay, info.next_attempt)) end,
  })
  ok("then: " .. v:body():gsub("%s+$", ""))

  step("task: three requests at once, each answered after 0.5 s")
  local t0 = clock.monotonic()
  local ts = {}
  for i = 1, 3 do ts[i] = task.spawn(function() return assert(http.request{ url = sim .. "/_sim/sleep?seconds=0.5" }):body() end) end
  for i = 1, 3 do assert(task.join(ts[i])) end
  ok(("all three done in %.2f s on one thread"):format(clock.monotonic() - t0))
end

print()
ok(("the whole tour took %.0f ms"):format((clock.monotonic() - started) * 1000))
if not arg[1] then proc.run{ "rm", "-rf", work } end
