-- The gates of one iteration: groups in ascending order, the gates of a group at once, a
-- required gate's failure skipping the later groups. Each gate runs under its own timeout —
-- a gate that exceeds it is cancelled for real (its process and its transfer are ended) and
-- scores 0 as TIMEOUT.
--
-- Model-aware scheduling: Ollama gates of a group that use different models run one model
-- after another when the GPU cannot hold them together (models' sizes from /api/tags,
-- providers.ollama.vram_gb), starting with the model already loaded, with keep_alive set so a
-- model stays loaded only while later gates of the iteration still need it. Every model is
-- then loaded once per iteration instead of being swapped in and out.
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local verdict = require "codeassist.gates.verdict"
local common = require "codeassist.gates.common"
local prompts = require "codeassist.loop.prompts"
local score = require "codeassist.score"
local preset = require "codeassist.preset"

local M = {}

local GB = require("codeassist.catalogue").GB

-- The gates that run, by group: {{group = 1, names = {...}}, ...}, ascending.
function M.groups(plan, gates)
  local by = {}
  for name in pairs(plan.gates) do
    if gates[name] then
      local g = plan.gates[name].parallel_group or 0
      by[g] = by[g] or {}
      table.insert(by[g], name)
    end
  end
  local order = {}
  for g, names in pairs(by) do
    table.sort(names)
    order[#order + 1] = { group = g, names = names }
  end
  table.sort(order, function(a, b) return a.group < b.group end)
  return order
end

-- Whether a model is on the GPU now (names as routes give them: "qwen3-coder" is
-- "qwen3-coder:latest").
local function is_loaded(state, model)
  local names = {}
  for name in pairs(state.loaded_models or {}) do names[#names + 1] = name end
  return require("codeassist.models_core").match(model, names) ~= nil
end

-- The order to run a group's gates in: waves of gates that can run at once. Gates on other
-- providers go in the first wave; Ollama gates are batched by model when their models do not
-- fit the GPU together, the models on the GPU now first.
function M.waves(state, names)
  local other, by_model, models = {}, {}, {}
  for _, name in ipairs(names) do
    local r = state.plan.routes[name]
    if r and r.provider == "ollama" and r.model and state.gates[name].kind ~= "measured" then
      if not by_model[r.model] then by_model[r.model] = {}; models[#models + 1] = r.model end
      table.insert(by_model[r.model], name)
    else
      other[#other + 1] = name
    end
  end
  local vram = state.vram_gb and state.vram_gb * GB
  local total = 0
  for _, m in ipairs(models) do total = total + (state.model_sizes[m] or 0) end
  if #models <= 1 or not vram or total <= vram then
    local wave = {}
    for _, n in ipairs(other) do wave[#wave + 1] = n end
    for _, m in ipairs(models) do for _, n in ipairs(by_model[m]) do wave[#wave + 1] = n end end
    return { wave }
  end
  local loaded = {}
  for _, m in ipairs(models) do loaded[m] = is_loaded(state, m) end
  table.sort(models, function(a, b)
    if loaded[a] ~= loaded[b] then return loaded[a] end
    return a < b
  end)
  local waves = {}
  for i, m in ipairs(models) do
    local wave = {}
    if i == 1 then for _, n in ipairs(other) do wave[#wave + 1] = n end end
    for _, n in ipairs(by_model[m]) do wave[#wave + 1] = n end
    waves[#waves + 1] = wave
  end
  return waves
end

-- What the Ollama server holds now (/api/ps), when the scheduling needs it.
local function read_loaded(state)
  if not state.vram_gb or state.replay then return end   -- a replay asks no server
  local urls = require("codeassist.providers").base_urls(state.cfg, "ollama")
  local client = { base_url = urls[1], api_key = state.cfg.providers.ollama.api_key, timeout = 3 }
  local loaded = require("codeassist.ollama_api").ps(client)
  if loaded then state.loaded_models = loaded end   -- unknown: keep what the gates last used
end

-- keep_alive for a call of this model now: kept while a later wave of the iteration needs it.
local function keep_alive(state, model)
  if not state.vram_gb or state.all_fit then return nil end   -- nothing to make room for
  return (state.needed_later[model] or 0) > 0 and "10m" or 0
end

-- Whether a failed call means the route's model cannot be reached (down, overloaded, missing).
local function unreachable(failure)
  if not failure then return false end
  local kind = failure.kind
  if require("codeassist.errors").UNREACHABLE[kind] or failure.circuit_open or kind == "timeout_first_byte" then return true end
  local status = tonumber(failure.status)
  return kind == "http" and status ~= nil and (status >= 500 or status == 404 or status == 429)
end

-- One gate: measured facts, a verdict, a score. Runs inside its own task (for the timeout).
local function run_gate(state, name, ctx)
  local gate = state.gates[name]
  local result = { gate = name, kind = gate.kind, rule = gate.rule, findings = {} }
  local check
  if gate.kind == "measured" then
    check = gate.check(ctx)
    result.measured = check
    if check.skip_model then
      result.score, result.reason = gate.score(nil, check)
      return result
    end
  end
  local route = state.router:route_for(name, ctx)
  result.provider, result.model = preset.provider_label(route.provider), route.model
  local live = state.progress and state.progress[name]
  if live then live:detail(result.provider .. " " .. tostring(route.model)) end
  local prompt = prompts.gate(gate, state.issue, state.change, check and check.report or nil)
  local v, info = verdict.ask(state.router, name, { system = prompts.GATE_SYSTEM, prompt = prompt, schema = gate.schema },
    { ctx = ctx, keep_alive = route.provider == "ollama" and keep_alive(state, route.model) or nil })
  result.usage = info.usage
  if info.route then
    result.provider, result.model = preset.provider_label(info.route.provider), info.route.model
    if require("codeassist.router").key_of(info.route) ~= require("codeassist.router").key_of(route) then
      result.fallback = ("%s %s"):format(preset.provider_label(route.provider), tostring(route.model))
    end
  end
  if not v then
    result.verdict_error = info.reason
    result.budget = info.failure and info.failure.budget or nil
    -- a required critical gate is served by its model or not at all: when that model cannot be
    -- reached the run cannot go on (a measured gate still has its measurement; an optional
    -- gate scores 0; a request the model refuses is the gate's error, not the route's)
    if route.floor == "critical" and gate.kind ~= "measured" and (state.plan.gates[name] or {}).required
       and unreachable(info.failure) then
      result.unavailable = ("%s %s: %s"):format(result.provider, tostring(route.model), info.failure.message)
    end
    if gate.kind == "measured" then
      -- the measurement stands; only the explanation is missing
      result.score, result.reason = gate.score(nil, check)
      result.reason = result.reason .. "; no explanation: " .. info.reason
    else
      result.score, result.reason, result.status = 0, "no valid verdict: " .. info.reason, "ERROR"
    end
    return result
  end
  result.summary = v.summary
  for _, f in ipairs(v.findings or {}) do result.findings[#result.findings + 1] = f end
  local s, why = gate.score(v, check)
  result.score = math.max(0, math.min(100, tonumber(s) or 0))
  result.reason = why
  return result
end

-- Runs one wave of gates at once, each under its timeout. Returns their results in order.
local function run_wave(state, wave, ctx_for)
  local tasks = {}
  for i, name in ipairs(wave) do
    local settings = state.plan.gates[name] or {}
    local seconds = (settings.timeout_ms or 300000) / 1000
    state.bus:emit("gate.start", { gate = name, iteration = state.iteration })
    local progress = state.bus:progress(("gate %s"):format(name))
    if state.progress then state.progress[name] = progress end
    tasks[i] = task.spawn(function()
      local started = clock.monotonic()
      local r, err = task.timeout(seconds, run_gate, state, name, ctx_for(name))
      if not r then
        r = { gate = name, score = 0, status = "TIMEOUT", findings = {},
              reason = ("did not finish within %g s (gates.%s.timeout_ms): cancelled"):format(seconds, name),
              rule = state.gates[name].rule }
      end
      r.seconds = clock.monotonic() - started
      progress:done()
      return r, err
    end)
  end
  local results = {}
  for i, t in ipairs(tasks) do
    local ok, r = task.join(t)
    if not ok then
      if type(r) == "table" and r.code then error(r, 0) end   -- a user's hook raised: stop the run
      r = { gate = wave[i], score = 0, status = "ERROR", findings = {}, reason = "the gate failed: " .. tostring(r),
            rule = state.gates[wave[i]].rule }
    end
    results[i] = r
  end
  return results
end

-- All gates of an iteration. state: {cfg, plan, gates, router, bus, issue, change, iteration,
-- ctx_for = fn(gate) -> ctx, vram_gb, model_sizes}. Returns results (gate order
-- by group) and whether later groups were skipped.
function M.run(state)
  local results, skipped_from = {}, nil
  local groups = M.groups(state.plan, state.gates)
  -- how many gates of the iteration still need each local model, for keep_alive
  state.needed_later = {}
  local function local_model(name)
    local r = state.plan.routes[name]
    return r and r.provider == "ollama" and r.model or nil
  end
  for _, g in ipairs(groups) do
    for _, name in ipairs(g.names) do
      local m = local_model(name)
      if m then state.needed_later[m] = (state.needed_later[m] or 0) + 1 end
    end
  end
  -- the next iteration's agent comes after these gates: its model stays if it is local
  local implement = state.plan.routes.implement
  if state.more_iterations and implement and implement.provider == "ollama" and implement.model then
    state.needed_later[implement.model] = (state.needed_later[implement.model] or 0) + 1
  end
  -- when every local model of the iteration fits the GPU at once, none needs unloading
  local total = 0
  for m in pairs(state.needed_later) do total = total + (state.model_sizes[m] or 0) end
  state.all_fit = state.vram_gb ~= nil and total <= state.vram_gb * GB
  read_loaded(state)
  for _, g in ipairs(groups) do
    if skipped_from then
      for _, name in ipairs(g.names) do
        results[#results + 1] = { gate = name, score = 0, status = "SKIPPED", findings = {}, rule = state.gates[name].rule,
          reason = ("not run: the gate %s %s in group %d"):format(skipped_from.gate, skipped_from.why or "is required and failed",
            skipped_from.group) }
      end
    else
      -- the waves are planned when the group starts: by then the GPU holds what the last group used
      for _, wave in ipairs(M.waves(state, g.names)) do
        for _, name in ipairs(wave) do
          local m = local_model(name)
          if m then state.needed_later[m] = state.needed_later[m] - 1 end
        end
        -- a resumed iteration keeps the results its gates already had
        local done, to_run = {}, {}
        for _, name in ipairs(wave) do
          local kept = state.done_results and state.done_results[name]
          if kept then done[#done + 1] = kept else to_run[#to_run + 1] = name end
        end
        local fresh = #to_run > 0 and run_wave(state, to_run, state.ctx_for) or {}
        for _, r in ipairs(done) do r.kept = true; fresh[#fresh + 1] = r end
        for _, r in ipairs(fresh) do
          if r.kept then goto judged end
          score.judge(r, state.plan.gates[r.gate] or {})
          if state.plan.on_gate then
            local changed = require("codeassist.errors").call_user("the on_gate(result, ctx) hook of " .. tostring(state.plan.source),
              state.plan.on_gate, require("codeassist.config").deep_copy(r), state.ctx_for(r.gate))
            if type(changed) == "table" then
              if changed.gate ~= r.gate then
                require("codeassist.errors").config("the on_gate(result, ctx) hook of %s returned a result for %s, "
                  .. "not for %s: return the result it was given, changed", tostring(state.plan.source),
                  changed.gate == nil and "no gate" or ("'" .. tostring(changed.gate) .. "'"), r.gate)
              end
              if changed.score ~= nil and type(changed.score) ~= "number" then
                require("codeassist.errors").config("the on_gate(result, ctx) hook of %s set %s's score to a %s: "
                  .. "expected a number from 0 to 100", tostring(state.plan.source), r.gate, type(changed.score))
              end
              r = changed
              r.score = math.max(0, math.min(100, tonumber(r.score) or 0))
              score.judge(r, state.plan.gates[r.gate] or {})
            end
          end
          -- TIMEOUT, ERROR stay; otherwise the status follows the (possibly changed) score
          r.status = r.status or (r.passed and "PASS" or (r.blocking and "FAIL" or "WARN"))
          state.bus:emit("gate.done", { result = r, iteration = state.iteration })
          if state.after_gate then state.after_gate(r) end   -- the run's checkpoint
          ::judged::
          r.kept = nil
          results[#results + 1] = r
          if r.unavailable and not skipped_from then
            skipped_from = { gate = r.gate, group = g.group, why = "its critical route is unavailable" }
          end
          if r.blocking and not skipped_from then skipped_from = { gate = r.gate, group = g.group } end
        end
        read_loaded(state)
      end
    end
  end
  -- shown in the plan's order (the banner's), whatever order the scheduling ran them in
  local rank, n = {}, 0
  for _, g in ipairs(groups) do
    for _, name in ipairs(g.names) do n = n + 1; rank[name] = n end
  end
  table.sort(results, function(a, b) return (rank[a.gate] or 1e9) < (rank[b.gate] or 1e9) end)
  return results, skipped_from
end

-- What the next implementation should fix, as lines: every gate below 100 that ran — those
-- that failed first, then by the points they cost the total — with what it measured and its
-- findings. A passing gate's findings count too: they can keep the total below the target.
function M.findings_for_next(results)
  local ranked = {}
  for _, r in ipairs(results) do
    if r.status ~= "SKIPPED" and (r.score or 0) < 100 then ranked[#ranked + 1] = r end
  end
  table.sort(ranked, function(a, b)
    if (not a.passed) ~= (not b.passed) then return not a.passed end
    local la, lb = (a.weight or 0) * (100 - (a.score or 0)), (b.weight or 0) * (100 - (b.score or 0))
    if la ~= lb then return la > lb end
    return a.gate < b.gate
  end)
  local lines = {}
  for _, r in ipairs(ranked) do
    lines[#lines + 1] = ("%s gate scored %s/100%s (%s)"):format(r.gate, tostring(r.score),
      r.passed and ", passing, but its findings cost points" or "", tostring(r.reason))
    if r.measured and r.measured.report and not r.passed then
      lines[#lines + 1] = ("  what %s measured:\n%s"):format(r.gate, r.measured.report:gsub("\n", "\n    "))
    end
    for _, f in ipairs(r.findings or {}) do
      if f.severity ~= "info" then lines[#lines + 1] = "  " .. common.describe(f) end
    end
  end
  return lines
end

return M
