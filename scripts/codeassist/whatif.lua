-- `codeassist whatif RUN_ID PRESET...`: a finished run's ledger re-priced under other presets.
--
-- The tokens each gate used in the run are priced at the route each preset gives that gate
-- (Claude list prices from codeassist.prices; a local model costs nothing), side by side with
-- what the run really spent and what an all-Claude run would have cost. Another model would
-- have written other tokens, and maybe needed another number of iterations: this re-prices the
-- same work, which is what comparing routes for cost needs.
local runs = require "codeassist.runs"
local prices = require "codeassist.prices"
local preset = require "codeassist.preset"
local config = require "codeassist.config"
local report = require "codeassist.report"
local json = require "codeassist.json"
local tty = require "codeassist.tty"
local errors = require "codeassist.errors"

local M = {}

local money = report.money

-- Per gate, from ledger.jsonl (the ledger's own totals): calls, tokens as prices.cost takes
-- them, the dollars spent (a replay: what the recorded calls cost), the all-Claude dollars,
-- the route that served most of its calls. nil and the failure when there is no ledger.
function M.usage_by_gate(path)
  local totals, err = require("codeassist.ledger").read(path)
  if not totals then return nil, err end
  local gates, order = {}, {}
  for name, t in pairs(totals.by_gate) do
    local g = { gate = name, calls = t.calls, usd = t.usd + t.recorded_usd, claude_usd = t.claude_usd, routes = t.routes,
                usage = { input_tokens = t.input_tokens, output_tokens = t.output_tokens,
                          cache_read_input_tokens = t.cache_read_tokens, cache_creation_input_tokens = t.cache_write_tokens } }
    for r, n in pairs(g.routes) do
      if not g.route or n > g.routes[g.route] or (n == g.routes[g.route] and r < g.route) then g.route = r end
    end
    gates[name] = g
    order[#order + 1] = name
  end
  table.sort(order, report.gate_before)   -- the same order as the report and the doctor
  return gates, order
end

-- One preset's price for the run: {name, gates = {gate = {route, usd, moved}}, usd, unpriced, moved}.
function M.price(gates, order, plan)
  local out = { name = plan.name, source = tostring(plan.source), gates = {}, usd = 0, unpriced = {}, moved = {} }
  for _, name in ipairs(order) do
    local g = gates[name]
    local route = plan.routes[name]
    local entry
    if not route then   -- a project's own gate the preset does not route: as the run did
      entry = { route = g.route, usd = g.usd, moved = false, unrouted = true }
    else
      local usd, known = prices.cost(route.provider, route.model, g.usage)
      local label = preset.route_label(route)
      entry = { route = label, usd = usd, moved = label ~= g.route }
      if not known then out.unpriced[#out.unpriced + 1] = name end
    end
    out.gates[name] = entry
    out.usd = out.usd + (entry.usd or 0)
    if entry.moved then out.moved[#out.moved + 1] = name end
  end
  return out
end

local function share(saved, base)
  if not base or base <= 0 then return "" end
  return (" (%d%%)"):format(math.floor(saved / base * 100 + 0.5))
end

-- opts: {repo, config, id, presets = {name or file, ...}, json}
function M.main(opts)
  local root = config.repo_root(opts.repo)
  local run, state = runs.open(root, opts.id)
  if not run then
    local hint = ""
    for _, name in ipairs(preset.BUILTIN) do
      if name == opts.id then hint = " — it is a preset's name: give the run first (`codeassist runs` lists them, or `latest`)" end
    end
    errors.usage("whatif: %s%s", state.message, hint)
  end
  local gates, order = M.usage_by_gate(run.paths.ledger)
  if not gates or #order == 0 then
    errors.usage("whatif: run %s made no model calls (its ledger %s is %s), so there is nothing to re-price", run.id,
      run.paths.ledger, gates and "empty" or "missing")
  end
  local cfgpath = opts.config or (root .. "/" .. config.DEFAULT_PATH)
  local cfg = config.load{ path = cfgpath, missing_ok = not opts.config }
  local columns = {}
  for _, ref in ipairs(opts.presets) do
    local plan = preset.plan(preset.load(ref, cfg), cfg, {})
    columns[#columns + 1] = M.price(gates, order, plan)
  end
  local spent, claude = 0, 0
  for _, name in ipairs(order) do
    spent, claude = spent + gates[name].usd, claude + gates[name].claude_usd
  end

  if opts.json then
    local doc = { run = run.id, preset = state.preset, prices_taken = prices.TAKEN, usd = spent, claude_usd = claude,
                  gates = json.array{}, presets = json.array{} }
    for _, name in ipairs(order) do
      local g = gates[name]
      doc.gates[#doc.gates + 1] = { gate = name, calls = g.calls, input_tokens = g.usage.input_tokens,
        output_tokens = g.usage.output_tokens, route = g.route, usd = g.usd, claude_usd = g.claude_usd }
    end
    for _, c in ipairs(columns) do
      local per_gate = {}
      for name, e in pairs(c.gates) do per_gate[name] = { route = e.route, usd = e.usd, moved = e.moved } end
      doc.presets[#doc.presets + 1] = { name = c.name, source = c.source, usd = c.usd,
        saved_usd = #c.unpriced == 0 and claude - c.usd or nil,   -- unknown while a gate has no price
        moved = json.array(c.moved), unpriced = json.array(c.unpriced), gates = per_gate }
    end
    io.stdout:write(json.encode(doc) or "{}", "\n")
    return 0
  end

  print(("What run %s (preset %s, %s) would have cost under other presets"):format(run.id,
    tty.printable(tostring(state.preset)), state.outcome and tostring(state.outcome.status) or "not finished"))
  print(("The same tokens per gate, priced at each preset's route (Claude list prices of %s; local models cost $0).")
    :format(prices.TAKEN))
  print()
  local head = { "GATE", "CALLS", "TOKENS IN/OUT", "THIS RUN" }
  for _, c in ipairs(columns) do head[#head + 1] = tty.printable(tostring(c.name)) end
  local rows = { head }
  for _, name in ipairs(order) do
    local g = gates[name]
    local row = { name, tostring(g.calls), ("%d/%d"):format(g.usage.input_tokens, g.usage.output_tokens),
                  ("%s %s"):format(g.route, money(g.usd)) }
    for _, c in ipairs(columns) do
      local e = c.gates[name]
      row[#row + 1] = ("%s %s%s"):format(e.route, money(e.usd), e.moved and " *" or "")
    end
    rows[#rows + 1] = row
  end
  local total = { "TOTAL", "", "", money(spent) }
  local saved = { "saved vs all-Claude", "", "", ("%s%s"):format(money(claude - spent), share(claude - spent, claude)) }
  local moved = { "gates that move", "", "", "" }
  for _, c in ipairs(columns) do
    total[#total + 1] = money(c.usd) .. (#c.unpriced > 0 and " + ?" or "")
    saved[#saved + 1] = #c.unpriced > 0 and "?" or ("%s%s"):format(money(claude - c.usd), share(claude - c.usd, claude))
    moved[#moved + 1] = #c.moved > 0 and table.concat(c.moved, ", ") or "none"
  end
  rows[#rows + 1] = total
  rows[#rows + 1] = saved
  rows[#rows + 1] = moved
  for _, l in ipairs(tty.columns(rows, "  ")) do print(l) end
  print()
  print(("All on Claude (%s) the run would have cost about %s. * marks a gate routed elsewhere than in the run.")
    :format(tostring(cfg.providers.anthropic.model), money(claude)))
  for _, c in ipairs(columns) do
    if #c.unpriced > 0 then
      print(("%s: no price for the model of %s — add it to codeassist.prices (scripts/codeassist/prices.lua)")
        :format(tty.printable(tostring(c.name)), table.concat(c.unpriced, ", ")))
    end
  end
  return 0
end

return M
