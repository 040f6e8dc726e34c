-- A preset edited during a run takes effect at the next iteration: the file is read again
-- between iterations, the new plan replaces the old one (routes, floors, targets, hooks), and
-- what changed is said and recorded in the trace. A preset that no longer loads keeps the old
-- plan, and the run says why. Built-in presets live in the binary and are not watched.
local preset = require "codeassist.preset"
local fs = require "codeassist.fs"
local json = require "codeassist.json"
local clock = require "codeassist.clock"
local events = require "codeassist.events"
local render = require "codeassist.loop.render"

local M = {}

-- Starts watching the run's preset file (nothing for a built-in preset given by name).
function M.watch(state, opts)
  local path = type(opts.preset) == "string" and opts.preset or nil
  local st = path and fs.stat(path)
  if not st or st.type ~= "file" then return end
  state.preset_watch = { path = path, text = fs.read(path), flags = opts.flags or {} }
end

local function label(route)
  return route and preset.route_label(route) or "none"
end

local function chain(route)
  local parts = {}
  for r in preset.route_chain(route) do parts[#parts + 1] = label(r) end
  return table.concat(parts, " → ")
end

-- A gate's settings as "path" -> printed value, for comparing two plans.
local function flatten(t, prefix, out, depth)
  out = out or {}
  if type(t) ~= "table" or (depth or 0) > 8 then return out end
  for k, v in pairs(t) do
    local path = (prefix and (prefix .. ".") or "") .. tostring(k)
    if type(v) == "table" then flatten(v, path, out, (depth or 0) + 1)
    elseif type(v) ~= "function" then out[path] = tostring(v) end
  end
  return out
end

-- What differs between two plans, as short phrases.
local function changes(old, new)
  local out = {}
  local names = {}
  for name in pairs(new.routes) do names[#names + 1] = name end
  for name in pairs(old.routes) do if not new.routes[name] then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do
    local a, b = old.routes[name], new.routes[name]
    if not b then
      out[#out + 1] = ("%s: no longer routed"):format(name)
    elseif not a then
      out[#out + 1] = ("%s: %s (new)"):format(name, chain(b))
    elseif chain(a) ~= chain(b) or a.floor ~= b.floor then
      out[#out + 1] = ("%s: %s → %s%s"):format(name, chain(a), chain(b), a.floor ~= b.floor and (" (floor " .. tostring(b.floor) .. ")") or "")
    end
    if b then   -- every setting of the gate: weight, required, thresholds.pass, timeout_ms, command, ...
      local fa, fb = flatten(old.gates[name]), flatten(new.gates[name])
      local keys = {}
      for k in pairs(fa) do keys[#keys + 1] = k end
      for k in pairs(fb) do if fa[k] == nil then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if fa[k] ~= fb[k] then out[#out + 1] = ("%s.%s: %s → %s"):format(name, k, fa[k] or "unset", fb[k] or "unset") end
      end
    end
  end
  for _, k in ipairs{ "target_score", "max_iterations", "iteration_delay" } do
    if old[k] ~= new[k] then out[#out + 1] = ("%s: %s → %s"):format(k, tostring(old[k]), tostring(new[k])) end
  end
  local reread = {}
  for _, k in ipairs(preset.HOOK_NAMES) do
    if (old[k] == nil) ~= (new[k] == nil) then out[#out + 1] = ("hook %s %s"):format(k, new[k] and "added" or "removed")
    elseif new[k] then reread[#reread + 1] = k end
  end
  -- a hook's body cannot be compared: the new one is what runs from now on
  if #reread > 0 then out[#out + 1] = ("hooks %s re-read"):format(table.concat(reread, ", ")) end
  return out
end

local function trace(state, record)
  record.time = clock.wall()
  state.bus:emit(record.event, record)
  if state.trace_file then
    local line = json.encode(record)
    if line then
      state.trace_file:write(events.scrub(line), "\n")
      state.trace_file:flush()
    end
  end
end

-- Makes plan the run's: what the state keeps of it, the parallel groups, and the build and
-- test commands the measured gates run. At the start of a run, and when a preset is re-read.
function M.apply(state, plan)
  state.plan = plan
  if state.router then state.router.plan = plan end
  state.preset, state.preset_source = plan.name, tostring(plan.source)
  state.target_score, state.max_iterations = plan.target_score, plan.max_iterations
  state.groups = require("codeassist.loop.gates").groups(plan, state.gates)
  state.measure_plan = require("codeassist.gates.measure").detect(state.root,
    { build = (plan.gates.build or {}).command, test = (plan.gates.test or {}).command })
end

-- Between iterations: the preset file read again when it changed. Returns true when the plan
-- was replaced.
function M.check(state, iteration)
  local w = state.preset_watch
  if not w then return false end
  local text = fs.read(w.path)
  if text == nil or text == w.text then return false end
  w.text = text
  local ok, new = pcall(function()
    local plan = preset.plan(preset.load(w.path, state.cfg), state.cfg, w.flags)
    preset.add_project_gates(plan, state.gates, state.cfg)
    return plan
  end)
  if not ok then
    local why = type(new) == "table" and new.message or tostring(new)
    render.note(state.bus, ("%s changed but no longer loads, so iteration %d keeps the previous preset: %s")
      :format(w.path, iteration, why), "warn")
    trace(state, { event = "preset.reload_failed", path = w.path, iteration = iteration, reason = why })
    return false
  end
  local what = changes(state.plan, new)
  M.apply(state, new)
  render.note(state.bus, ("%s changed: re-read for iteration %d%s"):format(w.path, iteration,
    #what > 0 and (" — " .. table.concat(what, "; ")) or " (nothing the run uses changed)"), "info")
  trace(state, { event = "preset.reloaded", path = w.path, iteration = iteration, preset = new.name, changes = json.array(what) })
  return true
end

return M
