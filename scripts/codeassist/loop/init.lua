-- The development loop: `codeassist run PRESET --issue N`.
--
--   doctor (every required route usable, or exit 1) -> the issue (gh / glab / a Markdown file)
--   -> branch feature/<issue>-<slug> -> iteration i:
--        implement (the agent, with the failing gates' findings from i = 2)
--        -> commit the iteration -> gates by group -> score -> hooks -> stop? -> iteration_delay
--   -> at the target: one commit, push the feature branch (never a protected one), open the
--      PR/MR and verify it exists -> exit 0; at max_iterations: BLOCKED, exit 1.
--
-- Everything a model could get wrong that matters is done by the runtime and checked:
-- commits, pushes, the PR. Build and test gates are measured. Routes switch only as the
-- preset's floors allow, and every switch is printed with its reason.
local config = require "codeassist.config"
local preset = require "codeassist.preset"
local errors = require "codeassist.errors"
local events = require "codeassist.events"
local router_mod = require "codeassist.router"
local term = require "codeassist.term"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local gates_mod = require "codeassist.gates"
local loop_gates = require "codeassist.loop.gates"
local prompts = require "codeassist.loop.prompts"
local render = require "codeassist.loop.render"
local score = require "codeassist.score"

local M = {}

-- Iterations with the same score and findings after which a run stops as stuck.
local STALL_AFTER = 3

local function note(bus, text, level)
  bus:emit("loop.note", { text = text, level = level })
end

-- The most a test run scores when fewer tests ran than at the start of the run.
local BASELINE_CAP = 50

-- The measured steps, as the gates ask for them: score, reason, and a report for the model.
local function measurer(state)
  local measure = require "codeassist.gates.measure"
  return function(step)
    local s = state.measure_plan and state.measure_plan[step]
    if not s then
      if step == "build" then
        return { score = 100, reason = "no build step found: nothing to compile", skip_model = true }
      end
      return { score = 50, reason = "no test command found (" .. tostring(state.measure_plan and state.measure_plan.why)
        .. "): add gates.test.command to .claude/autonomous.yml", skip_model = true }
    end
    local settings = state.plan.gates[step] or {}
    -- the gate's own timeout ends the command (the task is cancelled, its process group with
    -- it); this one only backs it up
    local r = measure.run(s, { root = state.root, sandbox = state.sandbox,
      timeout = (settings.timeout_ms or 300000) / 1000 + 10 })
    local sc, why
    if step == "build" then sc, why = measure.score_build(r)
    else
      sc, why = measure.score_test(r, { min_coverage = settings.thresholds and settings.thresholds.min_coverage })
      -- tests that ran before the change and no longer run (deleted, skipped, a test script
      -- rewritten to exit 0) do not make the change pass
      local before = state.baseline and state.baseline.tests and state.baseline.tests.total or 0
      local now = r.tests and r.tests.total or 0
      if before > 0 and now < before and sc > BASELINE_CAP then
        sc, why = BASELINE_CAP, ("%s; but fewer tests ran than when the run started (%d, was %d): tests that no longer "
          .. "run do not count as passing"):format(why, now, before)
      end
    end
    local report = {}
    report[#report + 1] = ("$ %s\n%s"):format(s.command, r.timed_out and "(timed out)" or ("exit code " .. tostring(r.exit)))
    for _, f in ipairs(r.tests and r.tests.failures or {}) do
      report[#report + 1] = ("FAILED %s%s: %s"):format(tostring(f.name), f.file and (" (" .. f.file .. (f.line and (":" .. f.line) or "") .. ")") or "",
        tostring(f.message or ""))
    end
    if sc < 100 then report[#report + 1] = r.output or "" end
    return { score = sc, reason = why, skip_model = sc >= 100, report = table.concat(report, "\n"), run = r }
  end
end

-- The git diff of the work so far against the base, capped for prompts.
-- Files whose diff says little to a reviewer and can be huge: in the stat, not in the patch.
local GENERATED = { "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock", "go.sum",
                    "poetry.lock", "uv.lock", "composer.lock", "Gemfile.lock", "*.min.js", "*.min.css", "*.map" }
local CHANGE_CAP = 60000

-- Every file gets a share of the budget, so one big file cannot push the rest of the change out
-- of the reviewers' view; what is cut says so.
local function change_of(state)
  local workspace = require "codeassist.agent.workspace"
  local stat = state.repo:output{ "diff", "--stat", "--no-color", state.base }
  if not stat then return "(the diff could not be read)" end
  if stat == "" then return "(no changes)" end
  local argv = { "diff", "--patch", "--no-color", state.base, "--", "." }
  for _, g in ipairs(GENERATED) do argv[#argv + 1] = ":(exclude,glob)**/" .. g end
  local patch = state.repo:output(argv) or ""
  -- one piece per file: the patch split where each "diff --git" line starts
  local starts, pos = {}, 1
  if patch:sub(1, 11) == "diff --git " then starts[1] = 1 end
  while true do
    local at = patch:find("\ndiff --git ", pos, true)
    if not at then break end
    starts[#starts + 1] = at + 1
    pos = at + 1
  end
  local files = {}
  for i, at in ipairs(starts) do files[i] = patch:sub(at, (starts[i + 1] or #patch + 2) - 2) end
  if #files == 0 and patch ~= "" then files[1] = patch end
  -- small files whole, the budget left shared by the bigger ones; files that get less than a
  -- useful share are named, not cut to nothing
  local budget = math.max(0, CHANGE_CAP - #stat)
  local order = {}
  for i = 1, #files do order[i] = i end
  table.sort(order, function(a, b) return #files[a] < #files[b] end)
  local shown, cut, left_out = {}, 0, {}
  for k, i in ipairs(order) do
    local share = math.floor(budget / (#order - k + 1))
    local f = files[i]
    if #f <= share then
      shown[i] = f
    elseif share >= 1500 then
      shown[i], cut = workspace.cap(f, share), cut + 1
    else
      left_out[#left_out + 1] = f:match("^diff %-%-git a/(%S+)") or "?"
    end
    budget = budget - #(shown[i] or "")
  end
  local parts = {}
  for i = 1, #files do if shown[i] then parts[#parts + 1] = shown[i] end end
  local notes = {}
  if cut > 0 then notes[#notes + 1] = ("the diff of %d file%s was cut to fit"):format(cut, cut == 1 and "" or "s") end
  if #left_out > 0 then
    table.sort(left_out)
    notes[#notes + 1] = ("%d file%s did not fit and %s in the summary only: %s"):format(#left_out,
      #left_out == 1 and "" or "s", #left_out == 1 and "is" or "are", table.concat(left_out, ", "))
  end
  local out = stat .. "\n" .. table.concat(parts, "\n")
  if #notes > 0 then
    out = "(" .. table.concat(notes, "; ") .. "; lockfiles and minified files are in the summary only)\n" .. out
  end
  return out
end

M._change_of = change_of   -- for the specs

-- The worktree's uncommitted changes: paths of modified tracked files, and untracked ones.
local function worktree_changes(repo)
  local out = repo:output{ "status", "--porcelain", "--untracked-files=all", "-z" } or ""
  local modified, untracked = {}, {}
  local entries, i = {}, 1
  for entry in out:gmatch("%Z+") do entries[#entries + 1] = entry end
  while i <= #entries do
    local e = entries[i]
    local code, path = e:sub(1, 2), e:sub(4)
    if code == "??" then untracked[#untracked + 1] = path else modified[#modified + 1] = path end
    if code:find("[RC]") then i = i + 1 end   -- a rename's source path follows
    i = i + 1
  end
  return modified, untracked
end

-- "a, b, c and 4 more"
local function listing(paths)
  local shown = {}
  for k = 1, math.min(#paths, 5) do shown[k] = paths[k] end
  return table.concat(shown, ", ") .. (#paths > 5 and (" and %d more"):format(#paths - 5) or "")
end

-- Stages the agent's work: everything but the untracked files the user had before the run.
local function stage(state)
  state.repo:run{ "add", "-A", "--", ".", ":(exclude).claude", ":(exclude).codeassist" }
  local keep_out = state.untracked_at_start or {}
  for k = 1, #keep_out, 100 do
    local argv = { "reset", "-q", "--" }
    for j = k, math.min(k + 99, #keep_out) do argv[#argv + 1] = keep_out[j] end
    state.repo:run(argv)
  end
end

-- The run's own folders: read outside any sandbox, so the agent must not change them.
local PROTECTED = { ".claude", ".codeassist" }

-- Every file under the protected folders, ignored ones included: path -> {type, content}.
local function snapshot(root)
  local fs = require "codeassist.fs"
  local files = {}
  local function walk(rel, depth)
    local st = fs.stat(root .. "/" .. rel, { follow = false })
    if not st or depth > 20 then return end
    if st.type == "dir" then
      files[rel] = { type = "dir" }
      for _, name in ipairs(fs.list(root .. "/" .. rel) or {}) do walk(rel .. "/" .. name, depth + 1) end
    elseif st.type == "file" and st.size <= 4 * 1024 * 1024 then
      files[rel] = { type = "file", content = fs.read(root .. "/" .. rel), mode = st.mode }
    else
      files[rel] = { type = st.type }
    end
  end
  for _, top in ipairs(PROTECTED) do walk(top, 0) end
  return files
end

-- Puts the protected folders back as the snapshot had them; returns the paths it changed.
local function restore(root, before)
  local fs = require "codeassist.fs"
  local now, changed = snapshot(root), {}
  local gone = {}
  for path, was in pairs(now) do
    if not before[path] then gone[#gone + 1] = path end
    if before[path] and was.type == "file" and before[path].type == "file" and was.content ~= before[path].content then
      fs.write_atomic(root .. "/" .. path, before[path].content or "", { mode = before[path].mode })
      changed[#changed + 1] = path
    end
  end
  table.sort(gone, function(a, b) return #a > #b end)   -- deepest first, so folders are empty
  for _, path in ipairs(gone) do
    os.remove(root .. "/" .. path)   -- a file, a link, or a folder emptied just before
    if now[path].type ~= "dir" then changed[#changed + 1] = path end
  end
  for path, was in pairs(before) do
    if not now[path] and was.type == "file" then
      local dir = path:match("^(.*)/[^/]*$")
      if dir then fs.mkdir_p(root .. "/" .. dir) end
      fs.write_atomic(root .. "/" .. path, was.content or "", { mode = was.mode })
      changed[#changed + 1] = path
    end
  end
  table.sort(changed)
  return changed
end

-- After the agent: still on the feature branch, and the run's own configuration as it was
-- (the sandbox keeps .git, .claude and .codeassist read-only where they exist; this also
-- catches folders the agent created, ignored files, and runs without a sandbox).
local function check_after_agent(state)
  local undone = restore(state.root, state.protected_snapshot or {})
  if #undone > 0 then
    note(state.bus, ("the agent changed the run's own configuration (%s): undone"):format(listing(undone)), "warn")
  end
  local now = state.repo:current_branch()
  if now ~= state.branch then
    errors.goal("the agent left the feature branch: %s is checked out, not %s — nothing was committed; check out %s "
      .. "and run again", tostring(now), state.branch, state.branch)
  end
end

-- The tests as they stood before the agent changed anything on this branch: measured when
-- the branch starts from its base, and kept in the repository's git folder (which the agent
-- cannot write) so a later run on the same branch compares with the same count.
local function baseline(state)
  local fs, json = require "codeassist.fs", require "codeassist.json"
  local command = state.measure_plan.test.command
  local gitdir = (state.repo:output{ "rev-parse", "--absolute-git-dir" } or ""):gsub("%s+$", "")
  local file = gitdir ~= "" and ("%s/codeassist/baseline/%s.json"):format(gitdir, state.branch:gsub("[^%w%-_.]", "_")) or nil
  local saved = file and json.decode(fs.read(file) or "")
  if type(saved) == "table" and saved.base == state.base and saved.command == command then
    state.baseline = { tests = { total = tonumber(saved.total) or 0, passed = tonumber(saved.passed) or 0 }, exit = saved.exit }
    note(state.bus, ("when work on this branch began, `%s`: %d of %d tests passed"):format(command,
      state.baseline.tests.passed, state.baseline.tests.total), "info")
    return
  end
  local progress = state.bus:progress("running the tests before any change")
  local settings = state.plan.gates.test or {}
  state.baseline = require("codeassist.gates.measure").run(state.measure_plan.test, { root = state.root,
    sandbox = state.sandbox, timeout = (settings.timeout_ms or 300000) / 1000 })
  progress:done()
  local t = state.baseline.tests
  note(state.bus, ("before any change, `%s`: %s"):format(command,
    t and t.total > 0 and ("%d of %d tests passed"):format(t.passed or 0, t.total)
      or ("exit %s, no test count could be read"):format(tostring(state.baseline.exit))), "info")
  -- only a branch that starts here gets its count kept: a continued one was already changed
  local fresh = (state.repo:output{ "rev-parse", "HEAD" } or ""):gsub("%s+$", "") == state.base
  if file and fresh then
    fs.mkdir_p(file:match("^(.*)/[^/]*$"))
    fs.write_atomic(file, json.encode{ base = state.base, command = command, total = t and t.total or 0,
                                       passed = t and t.passed or 0, exit = state.baseline.exit } or "{}")
  end
end

-- Commits the agent's work when the run stops before the iteration's own commit.
local function stop_commit(state, why)
  if state.protected_snapshot then restore(state.root, state.protected_snapshot) end
  if state.repo:current_branch() ~= state.branch then return end
  stage(state)
  local staged = state.repo:run{ "diff", "--cached", "--quiet" }
  if staged and staged.code == 0 then return end
  state.repo:commit(("codeassist: iteration %d of #%s (%s)"):format(state.iteration,
    tostring(state.issue.number or state.slug), why))
end

-- Commits what the agent changed in this iteration (the runtime commits; the agent does not).
local function commit_iteration(state, i)
  stage(state)
  local staged = state.repo:run{ "diff", "--cached", "--quiet" }
  if staged and staged.code == 0 then return false end   -- nothing changed
  local ok, err = state.repo:commit(("codeassist: iteration %d of #%s"):format(i, tostring(state.issue.number or state.slug)))
  if not ok then note(state.bus, "could not commit the iteration: " .. err.message, "warn") end
  return ok ~= nil
end

-- Where the work starts from. With a platform: the branch a pull request targets (resolved
-- once, fetched from origin), and the feature branch grows from it — or, when it exists
-- already (here or on origin), is continued. With an issue file: the current HEAD.
-- Sets state.base (the commit the work is measured against), state.base_name, state.target
-- (the pull request's base branch), state.start (where to create the branch, if it is new)
-- and state.remote_tip (origin's copy of the feature branch, which delivery builds on).
local function resolve_base(state)
  local repo = state.repo
  local function commit(ref)
    local out = repo:output{ "rev-parse", "--verify", "--quiet", ref .. "^{commit}" }
    return out and out:gsub("%s+$", "") or nil
  end
  local function merge_base(a, b)
    local out = repo:output{ "merge-base", a, b }
    return out and out:gsub("%s+$", "") or nil
  end
  local current = repo:current_branch()
  local feature = commit("refs/heads/" .. state.branch)
  if not state.platform then
    if current == state.branch then
      for _, name in ipairs{ "main", "master", "develop" } do
        local at = commit("refs/heads/" .. name)
        if at then return merge_base(at, "HEAD") or at, name end
      end
      errors.usage("%s is checked out and no base branch (main, master, develop) was found: check out the branch "
        .. "the work should start from, then run again", state.branch)
    end
    local head = commit("HEAD")
    if not head then errors.usage("%s has no commit yet: commit something first", state.root) end
    state.start = head
    return feature and merge_base(feature, head) or head, current ~= "HEAD" and current or head:sub(1, 12)
  end

  local forge = require "codeassist.forge"
  if not repo:output{ "remote", "get-url", "origin" } then
    errors.usage("%s has no origin remote to push to and open a pull request on: add one (git remote add origin URL), "
      .. "or work from a Markdown file with --issue-file", state.root)
  end
  local target, err = forge.target_branch(state.root, state.cfg)
  if not target then
    errors.goal("cannot tell which branch a pull request should target: %s (set git_rules.branch_flow.feature)", err.message)
  end
  state.target = target
  -- an explicit refspec: origin's branch (not a tag of the same name) into its tracking ref,
  -- whatever the remote's configured refspec says
  local fetched = repo:run({ "fetch", "-q", "origin", ("+refs/heads/%s:refs/remotes/origin/%s"):format(target, target) },
    { timeout = 300 })
  if not fetched or fetched.code ~= 0 then
    errors.goal("cannot fetch %s from origin: %s", target, fetched and (fetched.stderr or ""):gsub("%s+$", "") or "git failed")
  end
  local at = commit("refs/remotes/origin/" .. target)
  local mine = commit("refs/heads/" .. target)
  if mine and at and mine ~= at then
    local ahead = (repo:output{ "rev-list", "--count", at .. ".." .. mine } or "0"):gsub("%s+$", "")
    if ahead ~= "0" then
      state.notes[#state.notes + 1] = ("your %s has %s commit%s that origin does not: the work starts from origin's %s "
        .. "(push them first to build on them)"):format(target, ahead, ahead == "1" and "" or "s", target)
    end
  end
  -- origin's copy of the feature branch, if a run pushed it before
  local listed = repo:output({ "ls-remote", "--heads", "origin", "refs/heads/" .. state.branch }, { timeout = 120 }) or ""
  local remote_tip = listed:match("^(%x+)")
  if remote_tip then
    if not commit(remote_tip) then
      repo:run({ "fetch", "-q", "origin", ("+refs/heads/%s:refs/remotes/origin/%s"):format(state.branch, state.branch) },
        { timeout = 300 })
    end
    local ancestor = feature and repo:run{ "merge-base", "--is-ancestor", remote_tip, feature }
    if feature and not (ancestor and ancestor.code == 0) then
      errors.usage("origin's %s has commits this branch does not have: bring them in (git checkout %s && git pull) or "
        .. "delete the remote branch, then run again", state.branch, state.branch)
    end
    state.remote_tip = remote_tip
    if not feature then state.start = remote_tip end
  else
    state.start = at
  end
  local tip = feature or remote_tip
  if not tip then return at, target end
  local base = merge_base(tip, at)
  if not base then
    errors.usage("cannot find where %s and origin's %s meet%s: run git fetch --unshallow (or delete the branch), then "
      .. "run again", state.branch, target, (repo:output{ "rev-parse", "--is-shallow-repository" } or ""):find("true")
      and " (this clone is shallow)" or "")
  end
  return base, target
end

-- What the doctor found, before anything is spent: problems grouped by what to do about them.
-- A required gate that cannot be served stops the run (exit 1); an optional one scores 0, and
-- when that leaves the target out of reach the run stops too; a measured gate still runs; a
-- gate that will use its fallback is announced.
local function preflight(state, report, opts, bus)
  local plan, gates = state.plan, state.gates
  local groups, order = {}, {}
  local function add(level, text, remedy, gate)
    local key = level .. "\0" .. text .. "\0" .. (remedy or "")
    if not groups[key] then
      groups[key] = { level = level, text = text, remedy = remedy, gates = {} }
      order[#order + 1] = key
    end
    table.insert(groups[key].gates, gate)
  end
  local blocking, lost, weights, unserved = 0, 0, 0, {}
  for _, e in ipairs(report.gates) do
    local weight = tonumber((plan.gates[e.gate] or {}).weight) or 0
    weights = weights + weight
    local first = e.problems[1] or {}
    local measured = gates[e.gate] and gates[e.gate].kind == "measured"
    if e.status == "fail" then
      if measured then
        add("warn", (first.message or "unusable") .. " (a measured gate: it runs, but a failure will not be explained)",
          first.remedy, e.gate)
      elseif e.required then
        blocking = blocking + 1
        add("bad", first.message or "unusable", first.remedy, e.gate)
      else
        lost = lost + weight
        unserved[#unserved + 1] = e.gate
        add("warn", (first.message or "unusable") .. " (optional: it will score 0)", first.remedy, e.gate)
      end
    elseif e.status == "fallback" and e.fallback then
      add("warn", ("%s; it will use its fallback %s %s"):format(first.message or "unusable", e.fallback.provider,
        tostring(e.fallback.model)), nil, e.gate)
    end
  end
  for _, w in ipairs(report.sandbox and report.sandbox.problems or {}) do
    if w.severity == "error" then
      blocking = blocking + 1
      add("bad", w.message, w.remedy, "agent sandbox")
    end
  end
  for _, key in ipairs(order) do
    local g = groups[key]
    note(bus, ("%s: %s%s"):format(table.concat(g.gates, ", "), g.text, g.remedy and (" — " .. g.remedy) or ""), g.level)
  end
  local name = tostring(opts.preset or plan.name)
  if blocking > 0 then
    errors.goal("a required route cannot be served (see above, or `codeassist doctor %s`)", name)
  end
  local best = weights > 0 and math.floor((weights - lost) / weights * 1000 + 0.5) / 10 or 100
  if best < plan.target_score then
    errors.goal("the target %s cannot be reached: %s cannot be served and will score 0, so the best total is %s — "
      .. "fix their routes (see above, or `codeassist doctor %s`) or lower the target", plan.target_score,
      table.concat(unserved, ", "), best, name)
  end
end

-- The hook context for a gate now.
local function ctx_for(state, gate)
  local ctx = preset.context(state.plan, { phase = gate == "implement" and "implement" or "gates",
    iteration = state.iteration, history = config.deep_copy(state.history), changed_files = config.deep_copy(state.changed_files),
    issue = { number = state.issue.number, title = state.issue.title, labels = state.issue.labels, body = state.issue.body } })
  ctx.measure = state.measure
  return ctx
end

local function changed_files(state)
  local out = state.repo:output{ "diff", "--name-only", state.base } or ""
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

-- The issue: from the platform, or a Markdown file.
local function load_issue(opts, root, platform)
  local forge = require "codeassist.forge"
  if opts.issue_file then
    local issue, err = forge.issue_from_file(opts.issue_file)
    if not issue then errors.usage("--issue-file %s: %s", opts.issue_file, err.message) end
    return issue
  end
  local ok, err = forge.check_cli(platform)
  if not ok then errors.goal("%s", err.message) end
  local issue
  issue, err = forge.fetch_issue(platform, opts.issue, root)
  if not issue then
    local message = err.message
    if not message:find("#" .. tostring(opts.issue), 1, true) then message = ("issue #%s: %s"):format(tostring(opts.issue), message) end
    errors.goal("%s", message)
  end
  return issue
end

-- Finishes a successful run: one commit, the push, the PR, verified.
local function deliver(state)
  local forge = require "codeassist.forge"
  local title = ("%s: %s%s"):format(state.issue.labels and table.concat(state.issue.labels, " "):find("bug") and "fix" or "feat",
    state.issue.title or state.slug, state.issue.number and (" (#" .. state.issue.number .. ")") or "")
  -- the iterations' commits become one on top of what origin has (its copy of the branch, if a
  -- run pushed it before, else the base): reset --soft keeps the work, and the push stays a
  -- fast-forward
  stage(state)
  local changed = state.repo:run{ "diff", "--cached", "--quiet", state.base }
  if changed and changed.code == 0 then
    return nil, ("there is nothing to deliver: %s has no change against %s"):format(state.branch, state.base_name)
  end
  local onto = state.remote_tip or state.base
  local r = state.repo:run{ "reset", "--soft", onto }
  if not r or r.code ~= 0 then return nil, "git reset --soft failed: " .. (r and r.stderr or "git did not run") end
  stage(state)
  local staged = state.repo:run{ "diff", "--cached", "--quiet" }
  if staged and staged.code ~= 0 then   -- else: origin has this work already (a delivery that stopped at the PR)
    local ok, err = state.repo:commit(title .. (state.issue.number and ("\n\nCloses #" .. state.issue.number) or ""))
    if not ok then return nil, "commit: " .. err.message end
  end
  if not state.platform then return state.branch .. " (committed here; an issue file gets no push and no pull request)" end
  local pushed, err = state.repo:push("origin", state.branch)
  if not pushed then return nil, "push: " .. err.message end
  local base = state.target
  local body = ("%s\n\nQuality gates: %s/%s after %d iteration%s.\n\n| gate | score | status |\n|---|---|---|\n")
    :format(state.issue.number and ("Closes #" .. state.issue.number) or "", state.last_total, state.plan.target_score,
      state.iteration, state.iteration == 1 and "" or "s")
  for _, res in ipairs(state.last_results or {}) do
    body = body .. ("| %s | %s | %s |\n"):format(res.gate, tostring(res.score), res.status)
  end
  local pr, perr = forge.open_pr(state.platform, { root = state.root, head = state.branch, base = base, title = title, body = body })
  if not pr then return nil, "pull request: " .. perr.message end
  return pr.url .. (pr.existing and " (already open: updated with this run's commit)" or "")
end

local function supervised_pause(state)
  if not term.isatty("stdin") then
    return "y"   -- said once, when the run started
  end
  io.stdout:write(("\nIteration %d done (score %s). Continue? [y]es / [n]o (stop) / [s]kip the delay: "):format(state.iteration, state.last_total))
  io.stdout:flush()
  local answer = (io.stdin:read("*l") or "n"):lower():sub(1, 1)
  return answer == "" and "y" or answer
end

-- opts: {preset = name/path, preset_value, issue, issue_file, repo, config, dry_run,
--        supervised, flags = {target_score, max_iterations}}; returns the exit code.
function M.main(opts)
  local fs = require "codeassist.fs"
  local root = opts.repo or fs.cwd()
  local st = fs.stat(root)
  if not st or st.type ~= "dir" then
    errors.usage("--repo %s: %s", root, st and "not a folder" or "no such folder")
  end
  local cfgpath = opts.config or (root .. "/" .. config.DEFAULT_PATH)
  local cfg = config.load{ path = cfgpath, missing_ok = not opts.config }
  cfg.source.path = opts.config or config.DEFAULT_PATH
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local p = opts.preset_value ~= nil and preset.from_value(opts.preset_value, cfg, opts.preset) or preset.load(opts.preset, cfg)
  local plan = preset.plan(p, cfg, opts.flags or {})

  local bus = events.new()
  local formats = {}
  for k, v in pairs(require("codeassist.doctor.render").formats) do formats[k] = v end
  for k, v in pairs(render.formats) do formats[k] = v end
  local live = term.isatty("stdout")
  if not live then for k, v in pairs(render.log_formats) do formats[k] = v end end
  bus:add(events.text(io.stdout, { formats = formats, color = term.color("stdout"), live = live }))
  local trace
  if opts.trace then
    local err
    trace, err = io.open(opts.trace, "w")
    if not trace then errors.usage("--trace: cannot write %s", tostring(err)) end
    for _, s in ipairs{ cfg.providers.anthropic.api_key, cfg.providers.anthropic.auth_token, cfg.providers.ollama.api_key } do
      events.secret(s)
    end
    bus:add(events.json_lines(trace))
  end
  local started = clock.monotonic()
  local holder = {}
  local ok, code = pcall(M.run, opts, root, cfg, plan, bus, holder)
  bus:abandon()
  if not ok and holder.state and holder.state.on_branch then
    -- stopped part-way: what the agent wrote so far is kept in a commit on the branch, so the
    -- worktree is clean and the same command goes on from there
    local st = holder.state
    local why = type(code) == "table" and code.code == 130 and "interrupted" or "stopped"
    pcall(stop_commit, st, why)
    local count = (st.repo:output{ "rev-list", "--count", st.base .. "..HEAD" } or "?"):gsub("%s+$", "")
    note(bus, ("%s in iteration %d: the work so far is on %s (%s commit%s since %s); run the same command again "
      .. "to go on from there"):format(why, st.iteration, st.branch, count, count == "1" and "" or "s", st.base_name), "warn")
  end
  bus:emit("run.finished", { ok = ok, code = ok and code or (type(code) == "table" and code.code) or nil,
    error = not ok and tostring(type(code) == "table" and code.message or code) or nil,
    seconds = clock.monotonic() - started, peak_rss_kb = M.peak_rss_kb() })
  bus:close()
  if trace then trace:close() end
  if not ok then error(code, 0) end
  return code
end

-- The most memory this process has held (Linux), for the trace.
function M.peak_rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmHWM:%s+(%d+) kB"))
end

function M.run(opts, root, cfg, plan, bus, holder)
  local git = require "codeassist.git"
  local forge = require "codeassist.forge"
  local repo = git.open(root, cfg)
  if not repo:output{ "rev-parse", "--git-dir" } then errors.usage("%s is not a git repository (give --repo DIR)", root) end

  local gates = gates_mod.load(root)
  for name, g in pairs(gates) do
    if not plan.gates[name] then
      -- a project's own gate: its defaults, routed like the config's default
      plan.gates[name] = { weight = g.weight or 0, required = g.required or false, parallel_group = g.parallel_group or 3,
                           timeout_ms = (g.timeout or 300) * 1000, tools = g.tools, context = g.context }
      plan.routes[name] = preset.resolve_route(cfg, name, cfg.providers.default, "project gate " .. g.source, false)
    end
  end

  local platform = not opts.issue_file and forge.detect(root) or nil
  local state = {
    cfg = cfg, plan = plan, gates = gates, bus = bus, root = root, repo = repo, platform = platform,
    history = {}, changed_files = {}, iteration = 0, vram_gb = (opts.flags or {}).vram_gb or cfg.providers.ollama.vram_gb,
    model_sizes = {}, notes = {},
  }
  state.groups = loop_gates.groups(plan, gates)
  state.measure_plan = require("codeassist.gates.measure").detect(root,
    { build = (plan.gates.build or {}).command, test = (plan.gates.test or {}).command })

  -- the doctor first: nothing is spent on a run that cannot be served
  local doctor = require "codeassist.doctor"
  local dbus = events.new()
  if opts.dry_run then dbus = bus end
  local report, facts = doctor.check(cfg, plan, { timeout = 5 }, dbus)
  for _, s in ipairs(facts.ollama_list or {}) do
    for _, m in ipairs(s.models or {}) do state.model_sizes[m.name] = m.size end
  end
  for name, m in pairs(facts.models or {}) do
    local requested = name:match("|(.*)$")
    if m.name and m.size then state.model_sizes[requested] = m.size end
  end
  preflight(state, report, opts, bus)

  -- the run commits what the agent changes: the user's own uncommitted edits must not go with it
  local modified, untracked = worktree_changes(repo)
  if #modified > 0 then
    errors.usage("%s has uncommitted changes to tracked files (%s): commit or stash them (git stash), then run "
      .. "again — the run commits what the agent changes and must not take your edits with it", root, listing(modified))
  end
  state.untracked_at_start = untracked

  local issue = load_issue(opts, root, platform)   -- read-only, so a dry run checks it too
  state.issue = issue
  state.slug = forge.slug(issue.title or "work")
  state.branch = ("feature/%s-%s"):format(issue.number or "local", state.slug)
  state.base, state.base_name = resolve_base(state)
  bus:emit("loop.banner", M.plan_facts(state))
  for _, text in ipairs(state.notes) do note(bus, text, "warn") end
  if #untracked > 0 then
    note(bus, ("%d untracked file%s (%s) stay%s out of the run's commits"):format(#untracked, #untracked == 1 and "" or "s",
      listing(untracked), #untracked == 1 and "s" or ""), "info")
  end
  if opts.dry_run then
    note(bus, "dry run: nothing was changed and no model was called")
    return 0
  end

  -- the feature branch (an existing one is continued)
  local exists = repo:run{ "rev-parse", "--verify", "--quiet", "refs/heads/" .. state.branch }
  local r = exists and exists.code == 0 and repo:run{ "checkout", "-q", state.branch }
    or repo:run{ "checkout", "-q", "-b", state.branch, state.start }
  if not r or r.code ~= 0 then errors.goal("cannot check out %s: %s", state.branch, r and r.stderr or "git failed") end
  state.on_branch = true
  if holder then holder.state = state end

  state.sandbox = assert(require("codeassist.agent.sandbox").new{ root = repo.root and root, mode = cfg.agent.sandbox,
                                                                   network = cfg.agent.network })
  state.router = router_mod.new{ cfg = cfg, plan = plan, bus = bus }
  state.measure = measurer(state)
  -- the tests as they stand before the agent changes anything: a later run with fewer tests
  -- is not a pass (see measurer)
  if state.measure_plan and state.measure_plan.test then baseline(state) end
  state.ctx_for = function(gate) return ctx_for(state, gate) end

  if opts.supervised and not term.isatty("stdin") then
    note(bus, "--supervised: no terminal to ask on, so the run will not pause between iterations", "warn")
  end

  local findings = {}
  local implement_route = plan.routes.implement
  for i = 1, plan.max_iterations do
    state.iteration = i
    bus:emit("loop.iteration", { iteration = i, max = plan.max_iterations })
    local agent = require "codeassist.agent"
    state.protected_snapshot = snapshot(root)
    local progress = bus:progress("implementing")
    local result = agent.run{ cfg = cfg, router = state.router, gate = "implement", ctx = ctx_for(state, "implement"),
      workspace = root, phase = "implement", max_turns = cfg.agent.max_turns,
      system = prompts.IMPLEMENT_SYSTEM, messages = { { role = "user", content = prompts.implement(issue, i, findings) } },
      context_limit = implement_route.provider == "ollama" and (plan.gates.implement.context or 65536) or nil,
      on_event = function(ev) bus:emit(ev.type, ev) end }
    progress:done()
    local label = result.message and result.message.route and router_mod.label(result.message.route) or router_mod.label(implement_route)
    bus:emit("loop.implement", { result = result, route = label, iteration = i })
    if result.stop_reason == "sandbox" then errors.goal("the agent cannot run: %s", result.error) end
    if result.stop_reason == "provider" and implement_route.floor == "critical" and result.failure
       and errors.UNREACHABLE[result.failure.kind] then
      errors.goal("the agent's route is unavailable: %s", result.error)
    end
    check_after_agent(state)
    commit_iteration(state, i)
    state.changed_files = changed_files(state)
    state.change = change_of(state)

    state.more_iterations = i < plan.max_iterations
    local results = loop_gates.run(state)
    local total = score.total(results, plan)
    for _, res in ipairs(results) do
      state.history[res.gate] = state.history[res.gate] or {}
      table.insert(state.history[res.gate], { iteration = i, score = res.score, passed = res.passed, status = res.status,
                                              provider = res.provider, model = res.model })
    end
    if plan.score then
      local ctx = ctx_for(state, "score")
      local custom = errors.call_user("the score(results, ctx) hook of " .. tostring(plan.source), plan.score,
        config.deep_copy(results), ctx)
      if type(custom) == "number" then total.total = math.max(0, math.min(100, custom)); total.rules = total.rules .. " (then the preset's score() hook)" end
    end
    state.last_total, state.last_results = total.total, results
    bus:emit("loop.gates", { results = results, total = total, target = plan.target_score, iteration = i })
    findings = loop_gates.findings_for_next(results)
    for _, res in ipairs(results) do
      if res.unavailable then
        return M.blocked(state, ("a critical route is unavailable: the %s gate could not be served by %s — "
          .. "check the server and the model (`codeassist doctor %s`), then run again")
          :format(res.gate, res.unavailable, tostring(opts.preset or plan.name)), findings)
      end
    end

    local reached = total.total >= plan.target_score and #total.failed_required == 0
    if plan.on_iteration then
      local go_on, why = errors.call_user("the on_iteration(ctx) hook of " .. tostring(plan.source), plan.on_iteration,
        ctx_for(state, "iteration"))
      if go_on == false and not reached then
        return M.blocked(state, "stopped by the preset" .. (why and (": " .. tostring(why)) or ""), findings)
      end
    end
    if reached then
      local url, err = deliver(state)
      if not url then
        return M.blocked(state, "the target was reached but delivering failed: " .. err, {},
          ("the target was reached (%s/%s) but delivering the work failed; the run's output says why"):format(total.total,
            plan.target_score))
      end
      bus:emit("loop.outcome", { status = "done", total = total.total, target = plan.target_score, iterations = i, pr_url = url,
                                 platform = platform })
      if platform and issue.number then
        forge.comment(platform, issue.number, ("codeassist: done — quality gates %s/%s after %d iteration(s). %s")
          :format(total.total, plan.target_score, i, url), root)
      end
      return 0
    end
    -- the same score and the same findings three times: more iterations will not help
    local parts = { tostring(total.total) }
    for _, res in ipairs(results) do
      parts[#parts + 1] = ("%s=%s/%s"):format(res.gate, tostring(res.score), tostring(res.status))
      for _, f in ipairs(res.findings or {}) do parts[#parts + 1] = tostring(f.severity) .. ":" .. tostring(f.title) end
    end
    local signature = table.concat(parts, "\0")   -- no measured output: it carries timings
    state.same = signature == state.last_signature and (state.same or 1) + 1 or 1
    state.last_signature = signature
    if state.same >= STALL_AFTER and i < plan.max_iterations then
      return M.blocked(state, ("no progress: the same score (%s/%s) and the same findings in the last %d iterations")
        :format(total.total, plan.target_score, STALL_AFTER), findings)
    end
    if i < plan.max_iterations then
      if opts.supervised then
        local answer = supervised_pause(state)
        if answer == "n" then return M.blocked(state, "stopped at the supervisor's request", findings) end
        if answer ~= "s" and (plan.iteration_delay or 0) > 0 then task.sleep(plan.iteration_delay) end
      elseif (plan.iteration_delay or 0) > 0 then
        task.sleep(plan.iteration_delay)
      end
    end
  end
  return M.blocked(state, ("score %s/%s after %d iteration%s"):format(state.last_total, plan.target_score,
    plan.max_iterations, plan.max_iterations == 1 and "" or "s"), findings)
end

-- The plan as plain facts (the banner prints them; a trace records them).
function M.plan_facts(state)
  local plan, label = state.plan, preset.provider_label
  local facts = { preset = plan.name, extends = plan.extends, branch = state.branch, base = state.base_name or state.base:sub(1, 12),
    issue = { number = state.issue.number, title = state.issue.title }, target = plan.target_score,
    max_iterations = plan.max_iterations, platform = state.platform, gates = {},
    measured = state.measure_plan and { build = state.measure_plan.build and state.measure_plan.build.command,
                                        test = state.measure_plan.test and state.measure_plan.test.command } }
  for _, g in ipairs(state.groups) do
    for _, name in ipairs(g.names) do
      local gate, r = plan.gates[name], plan.routes[name]
      facts.gates[#facts.gates + 1] = { name = name, weight = gate.weight or 0, required = gate.required == true, group = g.group,
        measured = state.gates[name].kind == "measured", route = r and (label(r.provider) .. " " .. tostring(r.model)) or nil,
        source = state.gates[name].source }
    end
  end
  return facts
end

-- Text for the issue (which others read): the model servers' addresses taken out.
local function public(state, text)
  local providers = require "codeassist.providers"
  for _, which in ipairs{ "ollama", "anthropic" } do
    for _, url in ipairs(providers.base_urls(state.cfg, which)) do
      url = tostring(url):gsub("/+$", "")
      local at = text:find(url, 1, true)
      while at do
        text = text:sub(1, at - 1) .. "<" .. which .. ">" .. text:sub(at + #url)
        at = text:find(url, at + 1, true)
      end
    end
  end
  return require("codeassist.events").scrub(text)
end

-- public_reason: what the issue is told instead of reason (when reason quotes git or a server)
function M.blocked(state, reason, findings, public_reason)
  state.bus:emit("loop.outcome", { status = "blocked", reason = reason, findings = findings })
  if state.platform and state.issue and state.issue.number then
    local body = ("codeassist: BLOCKED — %s\n\n"):format(public(state, public_reason or reason))
    for _, f in ipairs(findings or {}) do body = body .. "- " .. public(state, f) .. "\n" end
    require("codeassist.forge").comment(state.platform, state.issue.number, body, state.root)
  end
  return 1
end

return M
