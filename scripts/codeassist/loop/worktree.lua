-- The worktree as the loop keeps it: what the agent changed, shown to the gates (the diff,
-- every file its share); what is staged and committed (never the user's untracked files, never
-- the run's own folders); and those folders — .claude, .codeassist — put back as they were
-- after each agent turn.
local errors = require "codeassist.errors"
local render = require "codeassist.loop.render"

local M = {}

-- Files whose diff says little to a reviewer and can be huge: in the stat, not in the patch.
local GENERATED = { "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "Cargo.lock", "go.sum",
                    "poetry.lock", "uv.lock", "composer.lock", "Gemfile.lock", "*.min.js", "*.min.css", "*.map" }
local CHANGE_CAP = 60000

-- Every file gets a share of the budget, so one big file cannot push the rest of the change out
-- of the reviewers' view; what is cut says so.
function M.change_of(state)
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


-- The worktree's uncommitted changes: paths of modified tracked files, and untracked ones.
function M.worktree_changes(repo)
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
function M.listing(paths)
  local shown = {}
  for k = 1, math.min(#paths, 5) do shown[k] = paths[k] end
  return table.concat(shown, ", ") .. (#paths > 5 and (" and %d more"):format(#paths - 5) or "")
end

-- Stages the agent's work: everything but the untracked files the user had before the run.
function M.stage(state)
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
local RUNS = require("codeassist.runs").DIR
M.PROTECTED = PROTECTED

-- Every file under the protected folders, ignored ones included: path -> {type, content}.
function M.snapshot(root)
  local fs = require "codeassist.fs"
  local files = {}
  local function walk(rel, depth)
    if rel == RUNS then return end   -- the runtime's own, written while the agent works
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
function M.restore(root, before)
  local fs = require "codeassist.fs"
  local now, changed = M.snapshot(root), {}
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
function M.check_after_agent(state)
  local undone = M.restore(state.root, state.protected_snapshot or {})
  if #undone > 0 then
    render.note(state.bus, ("the agent changed the run's own configuration (%s): undone"):format(M.listing(undone)), "warn")
  end
  local now = state.repo:current_branch()
  if now ~= state.branch then
    errors.goal("the agent left the feature branch: %s is checked out, not %s — nothing was committed; check out %s "
      .. "and run again", tostring(now), state.branch, state.branch)
  end
end

-- Commits the agent's work when the run stops before the iteration's own commit.
function M.stop_commit(state, why)
  if state.protected_snapshot then M.restore(state.root, state.protected_snapshot) end
  if state.repo:current_branch() ~= state.branch then return end
  M.stage(state)
  local staged = state.repo:run{ "diff", "--cached", "--quiet" }
  if staged and staged.code == 0 then return end
  state.repo:commit(("codeassist: iteration %d of #%s (%s)"):format(state.iteration,
    tostring(state.issue.number or state.slug), why))
end

-- Commits what the agent changed in this iteration (the runtime commits; the agent does not).
function M.commit_iteration(state, i)
  M.stage(state)
  local staged = state.repo:run{ "diff", "--cached", "--quiet" }
  if staged and staged.code == 0 then return false end   -- nothing changed
  local ok, err = state.repo:commit(("codeassist: iteration %d of #%s"):format(i, tostring(state.issue.number or state.slug)))
  if not ok then render.note(state.bus, "could not commit the iteration: " .. err.message, "warn") end
  return ok ~= nil
end

function M.changed_files(state)
  local out = state.repo:output{ "diff", "--name-only", state.base } or ""
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

return M
