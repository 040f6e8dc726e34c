-- The agent: a model that reads and changes a repository through tools, until it says it is
-- done. Policy in Lua over the runtime's primitives; any provider (Claude, Ollama's native
-- chat, Ollama's /v1/messages), since they all speak the internal Messages format.
--
--   local agent = require "codeassist.agent"
--   local r = agent.run{ cfg = cfg, route = plan.routes.implement,      -- or router = r, gate = "implement"
--                        system = "...", messages = {{role = "user", content = "Fix #12: ..."}},
--                        workspace = "/path/to/repo", tools = {"read", "edit", "bash"},
--                        max_turns = 40, context_limit = 32768, phase = "implement",
--                        on_event = function(ev) end, audit = function(record) end,
--                        on_turn = function(messages, turn) end,   -- after each completed turn
--                        turns_done = 0 }                           -- a resumed conversation's turns so far
--   r.stop_reason  -- "done" | "max_turns" | "cancelled" | "tool_loop" | "context" | "provider" | "sandbox"
--   r.message, r.transcript, r.usage {input_tokens, output_tokens}, r.turns, r.error
--
-- What the runtime enforces, whatever the model says: every path stays in the workspace;
-- `bash` runs in the sandbox (or, where bubblewrap cannot run, unsandboxed after a loud
-- warning) with a clean environment and a timeout; the git guardrails on every command;
-- outputs cut to head and tail and scrubbed of every known secret; every tool call and
-- guardrail decision audited. Misbehaving local models are recovered: a tool call printed
-- as text becomes a call; bad input, an unknown tool or a schema violation gets an error
-- that states the schema; the same failing call over and over, or an answer that is empty
-- twice, stops the agent with a reason the loop can act on (escalate along the route).
local providers = require "codeassist.providers"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"
local events = require "codeassist.events"
local cjson = require "cjson.safe"
local workspace = require "codeassist.agent.workspace"
local sandbox = require "codeassist.agent.sandbox"
local toolset = require "codeassist.agent.tools"
local recover = require "codeassist.agent.recover"
local context = require "codeassist.agent.context"
local guardrails = require "codeassist.guardrails"

local M = {}

M.DEFAULTS = { max_turns = 50, max_tokens = 4096, repeat_limit = 3, failure_limit = 6,
               ollama_window = 32768, claude_window = 200000 }

-- Secrets out, length capped: what the audit and the events may say about an input.
local function summarize(input)
  local out = {}
  for k, v in pairs(type(input) == "table" and input or {}) do
    if type(v) == "string" then
      v = events.scrub(v)
      if #v > 500 then v = v:sub(1, 500) .. ("... [%d bytes]"):format(#v) end
      v = workspace.utf8(v)
    end
    out[k] = v
  end
  return out
end

local function text_of(msg)
  local parts = {}
  for _, b in ipairs(msg.content or {}) do
    if b.type == "text" and type(b.text) == "string" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts)
end

-- An audit stream into a file: one JSON line per record, appended and flushed as it comes
-- (secrets scrubbed again, in case a record carries one).
function M.audit_file(path)
  errors.argcheck(type(path) == "string", "agent.audit_file: give a file path")
  local json = require "codeassist.json"
  return function(record)
    local f = io.open(path, "a")
    if not f then return end
    f:write(events.scrub(json.encode(record) or "{}"), "\n")
    f:close()
  end
end

local Run = {}
Run.__index = Run

function Run:emit(kind, fields)
  if not self.on_event then return end
  fields = fields or {}
  fields.type = kind
  fields.phase = self.phase
  self.on_event(fields)
end

function Run:audit(record)
  record.time, record.phase = events.timestamp(), self.phase
  if self.audit_fn then self.audit_fn(record) end
end

-- One tool call: checked, run, audited. Returns the tool_result block and whether it failed.
function Run:call_tool(block)
  local tool = self.tools[block.name]
  local started = clock.monotonic()
  local function result(text, failed, decision, reason, extra)
    -- one output may take a quarter of the window at most, so a small window still gets work done
    text = workspace.cap(workspace.utf8(events.scrub(text or "")), self.output_cap_now or self.output_cap)
    self:audit{ tool = block.name, args = summarize(block.input), decision = decision,
                reason = reason, seconds = clock.monotonic() - started, exit = extra and extra.exit }
    self:emit("agent.tool_result", { tool = block.name, id = block.id, ok = not failed, decision = decision,
                                     reason = reason, bytes = #text, seconds = clock.monotonic() - started })
    return { type = "tool_result", tool_use_id = block.id, content = failed and ("Error: " .. text) or text,
             is_error = failed or nil }, failed
  end
  self:emit("agent.tool", { tool = block.name, id = block.id, input = summarize(block.input) })
  if not tool then
    local names = {}
    for _, t in ipairs(self.tools.order) do names[#names + 1] = toolset.signature(t) end
    return result(("there is no tool named '%s'. The tools are: %s"):format(type(block.name) == "string" and block.name or "(none)",
      table.concat(names, "; ")), true, "error", "unknown tool")
  end
  if block.input_error then
    return result(("the input was not valid JSON (%s). Call %s again with a JSON object: %s")
      :format(block.input_error, tool.name, toolset.signature(tool)), true, "error", "invalid JSON")
  end
  local fits, why = toolset.check_input(tool, block.input)
  if not fits then
    return result(("%s; call it as %s"):format(why, toolset.signature(tool)), true, "error", "schema: " .. why)
  end
  local ok, text, err, extra = pcall(tool.run, block.input, self.env)
  if not ok then
    -- stopping is not failing: an interrupt or a cancelled task goes on up, unchanged
    if errors.is(text) or errors.is_failure(text, "cancelled") or errors.is_failure(text, "interrupted") then
      error(text, 0)
    end
    -- a tool's own bug must not end the run; the model hears of it, the audit keeps it
    return result("the tool failed inside codeassist: " .. tostring(text), true, "error", "tool raised")
  end
  if text then return result(text, false, "allow", nil, extra) end
  local decision = extra and extra.decision or "error"
  if decision == "deny" then
    self:emit("agent.guardrail", { tool = block.name, reason = extra.reason })
  end
  return result(err, true, decision, extra and extra.reason or err, extra)
end

-- A tool call printed as text becomes a call: the assistant's message is rewritten with
-- tool_use blocks, so the conversation continues in the proper form.
function Run:recover_text_calls(msg)
  local known = {}
  for _, t in ipairs(self.tools.order) do known[t.name] = t end
  local calls, prose = recover.calls_in_text(text_of(msg), known)
  if not calls then return false end
  local content = {}
  for _, b in ipairs(msg.content) do
    if b.type ~= "text" then content[#content + 1] = b end
  end
  if prose ~= "" then table.insert(content, 1, { type = "text", text = prose }) end
  for _, c in ipairs(calls) do
    self.synthetic = self.synthetic + 1
    content[#content + 1] = { type = "tool_use", id = ("recovered_%d"):format(self.synthetic), name = c.name, input = c.input }
  end
  msg.content = content
  self:emit("agent.recovered", { how = "a tool call printed as text", calls = #calls })
  return true
end

function Run:ask(req)
  if self.router then
    return self.router:call(self.gate, req, { ctx = self.ctx, context_length = self.window, timeout = self.timeout })
  end
  return providers.complete(self.cfg, self.route, req, { context_length = self.window, timeout = self.timeout })
end

function Run:finish(reason, extra)
  if self.env and self.env.sandbox then self.env.sandbox:close() end
  local r = { stop_reason = reason, transcript = self.messages, usage = self.usage, turns = self.turns,
              message = self.last }
  for k, v in pairs(extra or {}) do r[k] = v end
  self:emit("agent.stop", { reason = reason, turns = self.turns, error = r.error })
  self:audit{ tool = "agent", decision = "stop", reason = reason .. (r.error and (": " .. r.error) or "") }
  return r
end

local function check_opts(opts)
  errors.argcheck(type(opts) == "table", "agent.run: give a table of options")
  errors.argcheck(type(opts.cfg) == "table" and type(opts.cfg.providers) == "table",
    "agent.run: cfg must be the loaded config (config.load)")
  errors.argcheck(type(opts.route) == "table" or (type(opts.router) == "table" and type(opts.gate) == "string"),
    "agent.run: give a route, or a router and a gate")
  errors.argcheck(type(opts.messages) == "table" and #opts.messages > 0, "agent.run: messages must be a non-empty list")
  errors.argcheck(type(opts.workspace) == "string", "agent.run: workspace must be the repository's folder")
end

function M.run(opts)
  check_opts(opts)
  local cfg = opts.cfg
  local settings = cfg.agent or {}
  local route = opts.route or opts.router.plan.routes[opts.gate]
  errors.argcheck(route ~= nil, "agent.run: the router's plan has no route for '%s'", tostring(opts.gate))
  local run = setmetatable({
    cfg = cfg, route = opts.route, router = opts.router, gate = opts.gate, ctx = opts.ctx,
    phase = opts.phase or opts.gate or "agent", on_event = opts.on_event, audit_fn = opts.audit,
    messages = require("codeassist.config").deep_copy(opts.messages),
    usage = { input_tokens = 0, output_tokens = 0 }, turns = 0, synthetic = 0,
    timeout = opts.timeout,
    window = opts.context_limit or (route.provider == "ollama" and M.DEFAULTS.ollama_window or M.DEFAULTS.claude_window),
  }, Run)
  for _, s in ipairs{ cfg.providers.anthropic.api_key, cfg.providers.anthropic.auth_token, cfg.providers.ollama.api_key,
                      os.getenv("GH_TOKEN"), os.getenv("GITHUB_TOKEN"), os.getenv("GITLAB_TOKEN") } do
    events.secret(s)
  end
  -- the keys are in cfg now; a command the agent runs must not find them in this process
  require("codeassist.host").forget_env("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GH_TOKEN", "GITHUB_TOKEN",
    "GITLAB_TOKEN", "OLLAMA_API_KEY")

  local ws, err = workspace.open(opts.workspace)
  if not ws then return run:finish("sandbox", { error = "the workspace cannot be used: " .. err.message }) end
  local sb
  sb, err = sandbox.new{ root = ws.root, mode = settings.sandbox, network = settings.network }
  if not sb then return run:finish("sandbox", { error = err.message }) end
  if sb.warning then
    run:emit("agent.sandbox", { warning = sb.warning })
    if not M.warned then
      M.warned = true
      io.stderr:write("codeassist: WARNING: ", sb.warning, "\n")
    end
  end
  local rules = cfg.git_rules or {}
  run.env = { ws = ws, sandbox = sb, bash_timeout = settings.bash_timeout,
              guard = guardrails.new{ cwd = ws.root, protected = rules.protected_branches,
                                      forbidden = rules.commit_rules and rules.commit_rules.forbidden_patterns } }
  run.tools = toolset.set(opts.tools)
  local definitions = toolset.definitions(run.tools)
  local system = (opts.system and (opts.system .. "\n\n") or "")
    .. ("You work in the repository at %s. Paths are relative to it. Use the tools to read and change "
      .. "files and to run commands; when the work is done, answer without calling a tool."):format(ws.root)
  local max_tokens = opts.max_tokens or M.DEFAULTS.max_tokens
  local overhead = context.tokens(definitions) + context.tokens(system)
  run.output_cap = math.max(2000, math.floor((run.window - max_tokens - overhead) / 4) * context.CHARS_PER_TOKEN)
  local repeats, failures, empty = {}, 0, 0
  local last_failed_key

  -- a resumed conversation goes on from its last completed turn (opts.turns_done of them)
  for turn = (opts.turns_done or 0) + 1, opts.max_turns or M.DEFAULTS.max_turns do
    run.turns = turn
    local fits, estimate, shortened = context.fit(run.messages, run.window - max_tokens - overhead)
    if shortened > 0 then run:emit("agent.context", { shortened = shortened, tokens = estimate + overhead, window = run.window }) end
    if not fits then
      return run:finish("context", { error = ("the conversation needs about %d tokens and the window is %d, "
        .. "even with old outputs shortened"):format(estimate + overhead + max_tokens, run.window) })
    end
    run:emit("agent.turn", { turn = turn, tokens = estimate + overhead })
    local msg
    msg, err = run:ask{ system = system, messages = run.messages, tools = definitions, max_tokens = max_tokens }
    if not msg then
      if err.kind == "cancelled" or err.kind == "interrupted" then return run:finish("cancelled", { error = err.message }) end
      return run:finish("provider", { error = err.message, failure = err })
    end
    run.usage.input_tokens = run.usage.input_tokens + (msg.usage.input_tokens or 0)
    run.usage.output_tokens = run.usage.output_tokens + (msg.usage.output_tokens or 0)
    run.last = msg

    local calls = {}
    for _, b in ipairs(msg.content) do if b.type == "tool_use" then calls[#calls + 1] = b end end
    if #calls == 0 and run:recover_text_calls(msg) then
      for _, b in ipairs(msg.content) do if b.type == "tool_use" then calls[#calls + 1] = b end end
    end
    -- the transcript keeps only what a provider accepts back (no bookkeeping fields; thinking
    -- only with its signature)
    local content = {}
    for _, b in ipairs(msg.content) do
      if b.type == "text" then
        if type(b.text) == "string" and b.text ~= "" then content[#content + 1] = { type = "text", text = b.text } end
      elseif b.type == "tool_use" then content[#content + 1] = { type = "tool_use", id = b.id, name = b.name, input = b.input }
      elseif b.type == "thinking" and b.signature then
        content[#content + 1] = { type = "thinking", thinking = b.thinking, signature = b.signature }
      end
    end
    if #content > 0 then run.messages[#run.messages + 1] = { role = "assistant", content = content } end

    if #calls == 0 then
      if text_of(msg):find("%S") then return run:finish("done") end
      -- an empty answer: ask once more, then give up with a reason
      empty = empty + 1
      if empty >= 2 then return run:finish("provider", { error = "the model answered with nothing, twice" }) end
      run:emit("agent.recovered", { how = "an empty answer" })
      run.messages[#run.messages + 1] = { role = "user", content = "Your answer was empty. Call a tool to go on, "
        .. "or say in a sentence what you did if the work is done." }
    else
      empty = 0
      local results, all_failed = {}, true
      -- the turn's outputs share the quarter of the window one output may take
      run.output_cap_now = math.max(1000, math.floor(run.output_cap / #calls))
      local stop
      for _, block in ipairs(calls) do
        if stop then
          -- every call gets its result, or the transcript could not be sent again
          results[#results + 1] = { type = "tool_result", tool_use_id = block.id, is_error = true,
                                    content = "Error: not run: the agent stopped (" .. stop .. ")" }
        else
          if block.incomplete then block.input_error = "the call was cut off by the answer's length limit" end
          local res, failed = run:call_tool(block)
          results[#results + 1] = res
          all_failed = all_failed and failed
          local key = tostring(block.name) .. "|" .. (block.input_error or cjson.encode(block.input) or "?")
          if failed then
            repeats[key] = (last_failed_key == key) and (repeats[key] or 1) + 1 or 1
            last_failed_key = key
            if repeats[key] >= M.DEFAULTS.repeat_limit then
              stop = ("the same failing call %s, %d times in a row"):format(tostring(block.name), repeats[key])
            end
          else
            last_failed_key = nil
          end
        end
      end
      if stop then
        run.messages[#run.messages + 1] = { role = "user", content = results }
        return run:finish("tool_loop", { error = stop })
      end
      run.messages[#run.messages + 1] = { role = "user", content = results }
      if opts.on_turn then opts.on_turn(run.messages, turn) end   -- a completed turn: the caller keeps it
      failures = all_failed and failures + 1 or 0
      if failures >= M.DEFAULTS.failure_limit then
        return run:finish("tool_loop", { error = ("%d turns in a row where every tool call failed"):format(failures) })
      end
    end
  end
  return run:finish("max_turns", { error = ("no answer without a tool call within %d turns"):format(run.turns) })
end

return M
