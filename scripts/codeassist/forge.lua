-- The forge: issues, comments and pull/merge requests on GitHub (gh) or GitLab (glab), run
-- by the runtime itself and checked afterwards — a PR that cannot be seen once "created" is a
-- failure, never a line in a log.
--
--   local forge = require "codeassist.forge"
--   local platform, why = forge.detect(root)              -- "github" | "gitlab", and the rule that decided
--   assert(forge.check_cli(platform))                     -- {auth = true} also asks `gh auth status`
--   local issue = forge.fetch_issue(platform, 12, root)   -- {number, title, body, labels, url, state}
--   local issue = forge.issue_from_file("issues/12-fix-login.md")
--   forge.comment(platform, 12, "| a | b |\n|---|---|", root)
--   local base = forge.target_branch(root, cfg)          -- branch_flow.feature, develop, ..., remote HEAD
--   local pr = forge.open_pr(platform, { root = root, head = "feature/12-fix-login", base = base,
--                                         title = "Fix the login (#12)", body = "..." })
--   pr.url, pr.number, pr.existing                       -- or nil, failure
--   forge.slug("Fix the login bug!")                     --> "fix-the-login-bug"
--
-- Every program runs through proc.run as an argv (never a shell), with a timeout and the
-- repository as its working directory; text a user or a model wrote (titles, bodies,
-- comments) goes through stdin or as one argv element, so Markdown arrives byte for byte.
-- Failures are `nil, failure`: kind "not_found" (the CLI is missing; the message names it and
-- where to get it), "exec" (the command failed: the message names it and quotes its
-- stderr; `missing = true` when the issue or PR does not exist, `auth = true` when the CLI
-- is not logged in), "protocol" (the output is not the JSON expected, or the PR the forge
-- shows is not the one asked for), "too_large" (a glab text over 128 KiB, which one argv
-- element cannot hold), "timeout", "interrupted"; a failed verification has `unverified = true`.
-- forge.env overrides the CLIs' environment (the tests put tests/fakes first on PATH there). Tokens (GH_TOKEN, GITLAB_TOKEN, ...) reach the CLIs through their
-- environment only, and are scrubbed from every message.
--
-- The agent removes tokens from this process's environment when it starts (host.forget_env);
-- this module remembers them when it is first required, so require it before running the
-- agent.
local proc = require "codeassist.proc"
local errors = require "codeassist.errors"
local json = require "codeassist.json"
local fs = require "codeassist.fs"
local events = require "codeassist.events"

local M = {}

-- Overrides for the CLIs' environment (NAME = value, or false to remove): the tests put
-- their stubs first on PATH here. Applied after everything else.
M.env = {}
-- Seconds a gh/glab command may take; seconds between the verification attempts after a
-- PR is created (the forge may take a moment to show it).
M.timeout = 60
M.verify_delays = { 1, 2, 4 }

M.CLI = {
  github = { program = "gh", name = "GitHub CLI", url = "https://cli.github.com", login = "gh auth login",
             token = "GH_TOKEN" },
  gitlab = { program = "glab", name = "GitLab CLI", url = "https://gitlab.com/gitlab-org/cli", login = "glab auth login",
             token = "GITLAB_TOKEN" },
}

-- The variables the CLIs read their credentials and host from, remembered at load time.
M.TOKEN_VARS = { "GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
                 "GITLAB_TOKEN", "GITLAB_ACCESS_TOKEN", "OAUTH_TOKEN", "CI_JOB_TOKEN" }
local remembered = {}

-- Remembers the token variables now in the environment (done once when the module loads;
-- call it again if they were set later). Returns the names remembered.
function M.remember_tokens()
  local names = {}
  for _, k in ipairs(M.TOKEN_VARS) do
    local v = os.getenv(k)
    if v and v ~= "" then
      remembered[k] = v
      events.secret(v)
      names[#names + 1] = k
    end
  end
  return names
end
M.remember_tokens()

-- The environment a CLI runs with: this process's own, the remembered tokens, no keys it
-- has no use for, no prompts, pagers, colours or update checks; then M.env.
function M.environment()
  local env = {
    ANTHROPIC_API_KEY = false, ANTHROPIC_AUTH_TOKEN = false, OLLAMA_API_KEY = false,
    GH_PROMPT_DISABLED = "1", GH_NO_UPDATE_NOTIFIER = "1", GH_NO_EXTENSION_UPDATE_NOTIFIER = "1",
    GH_PAGER = "cat", GLAB_PAGER = "cat", PAGER = "cat", NO_COLOR = "1", CLICOLOR = "0",
    NO_PROMPT = "1", CHECK_UPDATE = "false", GIT_TERMINAL_PROMPT = "0",
    GH_SPINNER_DISABLED = "1",
  }
  for k, v in pairs(remembered) do
    if not os.getenv(k) then env[k] = v end
  end
  for k, v in pairs(M.env) do env[k] = v end
  return env
end

-- ===== messages =====

-- Text fit for a message: no colours, no token (known or token-shaped), no blank lines,
-- at most max bytes.
local function redact(text)
  text = events.scrub(text)
  for _, v in pairs(remembered) do
    local at = text:find(v, 1, true)
    while at do
      text = text:sub(1, at - 1) .. "***" .. text:sub(at + #v)
      at = text:find(v, at + 3, true)
    end
  end
  text = text:gsub("gh[pousr]_[%w_]+", "***"):gsub("github_pat_[%w_]+", "***"):gsub("glpat%-[%w_%-]+", "***")
  return text
end

local function tidy(text, max)
  text = (text or ""):gsub("\27%[[%d;?]*[%a]", ""):gsub("\r", "")
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line ~= "ERROR" then lines[#lines + 1] = line end   -- glab's error header
  end
  text = redact(table.concat(lines, "\n"))
  max = max or 1500
  if #text > max then text = text:sub(1, max) .. " …" end
  return text
end
M.tidy = tidy

-- The command as a message shows it: long arguments (a title, a description) shortened.
local function show_command(argv)
  local words = {}
  for i, a in ipairs(argv) do
    if #a > 60 or a:find("\n") then
      local flag = a:match("^(%-%-[%w-]+=)")
      a = flag and (flag .. ("<%d bytes>"):format(#a - #flag)) or (a:sub(1, 40):gsub("\n.*", "") .. "…")
    end
    if a == "" or a:find("[%s\"'$`\\|&;<>()*?#~]") then a = "'" .. a:gsub("'", "'\\''") .. "'" end
    words[i] = a
  end
  return redact(table.concat(words, " "))
end

-- ===== running the CLIs =====

local function check_platform(platform, fn)
  if not M.CLI[platform] then
    error(("forge.%s: platform must be \"github\" or \"gitlab\", not %s"):format(fn, tostring(platform)), 3)
  end
  return M.CLI[platform]
end

local function missing_cli(cli)
  return errors.failure("not_found", ("%s (the %s) is not installed or not on PATH: install it from %s")
    :format(cli.program, cli.name, cli.url), { program = cli.program, url = cli.url })
end

-- Does stderr say the CLI is not logged in?
local function auth_problem(platform, r)
  local e = (r.stderr or "") .. "\n" .. (r.stdout or "")
  if platform == "github" then
    return r.code == 4 or e:find("gh auth login", 1, true) or e:find("HTTP 401", 1, true)
      or e:find("Bad credentials", 1, true)
  end
  return e:find("401 Unauthorized", 1, true) or e:find("401 {message", 1, true)
    or e:find("glab auth login", 1, true) or e:find("not authenticated", 1, true)
end

-- Runs a CLI (argv without the program) in root. Returns proc.run's result when it exited
-- 0, else nil, failure (extra: command, code, stderr, auth).
local function cli_run(platform, args, opts)
  local cli = M.CLI[platform]
  opts = opts or {}
  local argv = { cli.program }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local spec = { cwd = opts.root, env = M.environment(), stdin = opts.stdin,
                 timeout = opts.timeout or M.timeout, max_output = 16 * 1024 * 1024 }
  for i, a in ipairs(argv) do spec[i] = a end
  local r, err = proc.run(spec)
  local command = show_command(argv)
  if not r then
    if err.kind == "not_found" and not err.message:find("working directory", 1, true) then
      return nil, missing_cli(cli)
    end
    return nil, errors.failure(err.kind, ("%s could not run: %s"):format(command, redact(err.message)),
      { command = command })
  end
  if r.interrupted then
    return nil, errors.failure("interrupted", command .. " was interrupted", { command = command })
  end
  if r.timed_out then
    return nil, errors.failure("timeout", ("%s did not finish within %gs"):format(command, spec.timeout),
      { command = command })
  end
  if r.code ~= 0 then
    local said = tidy(r.stderr ~= "" and r.stderr or r.stdout)
    local how = r.code and ("exit " .. r.code) or ("killed by " .. tostring(r.signal_name or r.signal))
    local auth = auth_problem(platform, r) and true or nil
    local msg = ("%s failed (%s): %s"):format(command, how, said ~= "" and said or "(no output)")
    if auth then
      msg = msg .. ("\n%s is not logged in: run `%s`, or set %s"):format(cli.program, cli.login, cli.token)
    end
    return nil, errors.failure("exec", msg, { command = command, code = r.code, stderr = said, auth = auth })
  end
  r.command = command
  return r
end

-- Runs a CLI that prints JSON; returns the decoded value.
local function cli_json(platform, args, opts)
  local r, err = cli_run(platform, args, opts)
  if not r then return nil, err end
  local doc = json.decode(r.stdout)
  if type(doc) ~= "table" then
    local shown = tidy(r.stdout, 200)
    return nil, errors.failure("protocol", ("%s printed %s, not the JSON expected"):format(r.command,
      shown == "" and "nothing" or ("'" .. shown .. "'")), { command = r.command })
  end
  return doc, r
end

local function str(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  return nil
end

-- ===== which forge =====

-- The host of a remote URL: https://host/..., ssh://user@host:port/..., user@host:path.
local function url_host(url)
  local host = url:match("^%a[%w+.-]*://([^/]+)")
  if host then
    return (host:gsub("^.*@", ""):gsub(":%d*$", ""))
  end
  host = url:match("^[^/:]+:")                       -- scp-like: [user@]host:path
  if host then return (host:gsub("^.*@", ""):gsub(":$", "")) end
  return nil
end
M.url_host = url_host

local function git_repo(root, cfg)
  return require("codeassist.git").open(root, cfg)
end

-- "github" or "gitlab", and why: .gitlab-ci.yml; .github/workflows/; origin's host; else github.
function M.detect(root)
  errors.argcheck(type(root) == "string", "forge.detect: give the repository's folder")
  local st = fs.stat(root .. "/.gitlab-ci.yml")
  if st and st.type == "file" then return "gitlab", ".gitlab-ci.yml exists" end
  st = fs.stat(root .. "/.github/workflows")
  if st and st.type == "dir" then return "github", ".github/workflows/ exists" end
  local r = git_repo(root):run({ "remote", "get-url", "origin" }, { timeout = 15 })
  if r and r.code == 0 then
    local url = r.stdout:gsub("%s+$", "")
    local host = (url_host(url) or ""):lower()
    if host:find("gitlab", 1, true) then return "gitlab", "origin is on " .. host end
    if host:find("github", 1, true) then return "github", "origin is on " .. host end
    return "github", ("origin (%s) names neither GitHub nor GitLab: GitHub assumed"):format(redact(host ~= "" and host or url))
  end
  return "github", "no CI folder and no origin remote: GitHub assumed"
end

-- true when the platform's CLI runs (and, with opts.auth, is logged in); else nil, failure.
function M.check_cli(platform, opts)
  local cli = check_platform(platform, "check_cli")
  local r, err = cli_run(platform, { "--version" }, { timeout = 15 })
  if not r then return nil, err end
  if opts and opts.auth then
    r, err = cli_run(platform, { "auth", "status" }, { timeout = 30, root = opts.root })
    if not r then
      err.auth = true
      if not err.message:find("is not logged in", 1, true) then
        err.message = err.message .. ("\n%s is not logged in: run `%s`, or set %s"):format(cli.program, cli.login, cli.token)
      end
      return nil, err
    end
  end
  return true
end

-- ===== issues =====

local STATES = { OPEN = "open", opened = "open", open = "open", CLOSED = "closed", closed = "closed",
                 locked = "locked", MERGED = "merged", merged = "merged" }

local function label_names(list)
  local names = {}
  if type(list) == "table" then
    for _, l in ipairs(list) do
      local name = type(l) == "table" and str(l.name) or str(l)
      if name then names[#names + 1] = name end
    end
  end
  return names
end

local function check_number(number, fn)
  local n = tonumber(type(number) == "string" and number:match("^#?(%d+)$") or number)
  if not (n and n >= 1 and n == math.floor(n)) then
    error(("forge.%s: the issue number must be a positive integer, not %s"):format(fn, tostring(number)), 3)
  end
  return ("%d"):format(n)
end

-- Does a failure say the issue (or PR) does not exist (and not that the repository or the
-- host is unknown)?
local MISSING = {
  "Could not resolve to an issue or pull request with the number of",   -- gh issue view/comment
  "Could not resolve to a PullRequest with the number of",              -- gh pr view N
  "no pull requests found for branch",                                  -- gh pr view BRANCH
  "no open merge request available for",                                -- glab mr view BRANCH
}
local function is_missing(err)
  if err.kind ~= "exec" or err.auth then return false end
  local s = err.stderr or ""
  for _, text in ipairs(MISSING) do
    if s:find(text, 1, true) then return true end
  end
  -- glab: the API's 404 for the issue or the merge request itself
  return s:find("/issues/%d+: 404") ~= nil or s:find("/merge_requests/%d+: 404") ~= nil
end

-- {number, title, body, labels = {names}, url, state = "open" | "closed" | ..., platform}
function M.fetch_issue(platform, number, root)
  check_platform(platform, "fetch_issue")
  local n = check_number(number, "fetch_issue")
  local doc, err
  if platform == "github" then
    doc, err = cli_json(platform, { "issue", "view", n, "--json", "number,title,body,labels,url,state" }, { root = root })
  else
    doc, err = cli_json(platform, { "issue", "view", n, "--output", "json" }, { root = root })
  end
  if not doc then
    if is_missing(err) then
      err.missing = true
      err.message = ("issue #%s was not found on %s: %s"):format(n, platform == "github" and "GitHub" or "GitLab", err.message)
    end
    return nil, err
  end
  local issue
  if platform == "github" then
    issue = { number = tonumber(doc.number), title = str(doc.title), body = str(doc.body) or "",
              labels = label_names(doc.labels), url = str(doc.url), state = STATES[doc.state] or str(doc.state) }
  else
    issue = { number = tonumber(doc.iid), title = str(doc.title), body = str(doc.description) or "",
              labels = label_names(doc.labels), url = str(doc.web_url), state = STATES[doc.state] or str(doc.state) }
  end
  if not issue.number or not issue.title then
    return nil, errors.failure("protocol", ("%s issue view %s printed JSON without the issue's %s"):format(
      M.CLI[platform].program, n, issue.number and "title" or "number"))
  end
  issue.platform = platform
  return issue
end

-- Front matter at the top of a Markdown file (a "---" line, YAML, a "---" or "..." line):
-- its table (nil when there is none or it is not a mapping) and the text after it.
local function front_matter(text)
  if not text:match("^%-%-%-[ \t]*\r?\n") then return nil, text end
  local start = text:find("\n") + 1
  local pos = start
  while pos <= #text do
    local eol = text:find("\n", pos, true) or #text + 1
    local line = text:sub(pos, eol - 1):gsub("\r$", "")
    if line:match("^%-%-%-[ \t]*$") or line:match("^%.%.%.[ \t]*$") then
      local doc = require("codeassist.yaml").load(text:sub(start, pos - 1), { name = "front matter" })
      if type(doc) ~= "table" then return nil, text end
      return doc, text:sub(eol + 1)
    end
    pos = eol + 1
  end
  return nil, text
end

-- The same shape as fetch_issue from a local Markdown file: title from the first "# "
-- heading (else front matter's title, else the file name), the body is the rest; the number
-- from front matter `number:` or a leading "123-" in the file name, else nil.
function M.issue_from_file(path)
  errors.argcheck(type(path) == "string", "forge.issue_from_file: give the path of a Markdown file")
  local text, err = fs.read(path, { max_bytes = 4 * 1024 * 1024 })
  if not text then return nil, err end
  text = text:gsub("^\239\187\191", "")                  -- a UTF-8 BOM
  local meta, rest = front_matter(text)
  meta = meta or {}
  local name = path:match("([^/]+)$")
  local stem = name:gsub("%.[^.]*$", "")
  local title, body
  local lines, fence = {}, nil
  for line in (rest .. (rest:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    local heading
    if not title then
      local f = line:match("^ ? ? ?(```+)") or line:match("^ ? ? ?(~~~+)")
      if f then
        if not fence then fence = f:sub(1, 1) elseif f:sub(1, 1) == fence then fence = nil end
      elseif not fence then
        heading = line:match("^ ? ? ?#[ \t]+(.-)[ \t]*\r?$") or (line:match("^ ? ? ?#[ \t]*\r?$") and "")
      end
    end
    if heading then
      title = heading:gsub("[ \t]+#+$", ""):gsub("^#+$", "")
    else
      lines[#lines + 1] = line
    end
  end
  body = table.concat(lines, "\n"):gsub("^%s*\n", ""):gsub("%s+$", "")
  if not title or title == "" then title = str(meta.title) or stem end
  local number = tonumber(meta.number) or tonumber(meta.issue) or tonumber(name:match("^#?(%d+)[-_. ]"))
  if number and (number < 1 or number ~= math.floor(number)) then number = nil end
  local labels = meta.labels
  if type(labels) == "string" then
    local list = {}
    for l in labels:gmatch("[^,]+") do list[#list + 1] = l:match("^%s*(.-)%s*$") end
    labels = list
  end
  return { number = number, title = title, body = body, labels = label_names(labels),
           url = str(meta.url), state = STATES[meta.state] or str(meta.state) or "open", path = path,
           platform = "file" }
end

-- Comments on an issue; body reaches the forge byte for byte (gh: stdin; glab: one argv
-- element). Returns true and the comment's URL when the CLI printed one.
function M.comment(platform, number, body, root)
  check_platform(platform, "comment")
  local n = check_number(number, "comment")
  errors.argcheck(type(body) == "string" and body:find("%S"), "forge.comment: the body must be a non-empty string")
  local r, err
  if platform == "github" then
    r, err = cli_run(platform, { "issue", "comment", n, "--body-file", "-" }, { root = root, stdin = body })
  else
    if #body > 120000 then
      return nil, errors.failure("too_large", ("the comment is %d bytes: glab takes it as one argument, at most 128 KiB")
        :format(#body))
    end
    r, err = cli_run(platform, { "issue", "note", n, "--message=" .. body }, { root = root })
  end
  if not r then
    if is_missing(err) then
      err.missing = true
      err.message = ("cannot comment on issue #%s: %s"):format(n, err.message)
    end
    return nil, err
  end
  return true, r.stdout:match("https?://%S+")
end

-- ===== branches =====

-- The PR's base: branch_flow.feature when origin has it, else the first of develop, staging,
-- main, master that origin has, else origin's HEAD branch. Returns name, why.
function M.target_branch(root, cfg)
  errors.argcheck(type(root) == "string", "forge.target_branch: give the repository's folder")
  local flow = cfg and cfg.git_rules and cfg.git_rules.branch_flow or {}
  local wanted, seen = {}, {}
  local function want(name, why)
    if type(name) == "string" and name ~= "" and not seen[name] then
      seen[name] = true
      wanted[#wanted + 1] = { name = name, why = why }
    end
  end
  want(flow.feature, "git_rules.branch_flow.feature")
  for _, b in ipairs{ "develop", "staging", "main", "master" } do want(b, "the first of develop, staging, main, master on origin") end
  local repo = git_repo(root, cfg)
  local args = { "ls-remote", "--heads", "origin" }
  for _, w in ipairs(wanted) do args[#args + 1] = "refs/heads/" .. w.name end
  local out, err = repo:output(args, { timeout = 60 })
  if not out then
    err.message = redact(err.message)
    return nil, err
  end
  local heads = {}
  for ref in out:gmatch("%x+%s+refs/heads/([^\n]+)") do heads[ref:gsub("%s+$", "")] = true end
  for _, w in ipairs(wanted) do
    if heads[w.name] then return w.name, ("%s (%s is on origin)"):format(w.why, w.name) end
  end
  out = repo:output({ "ls-remote", "--symref", "origin", "HEAD" }, { timeout = 60 })
  local head = out and out:match("ref:%s*refs/heads/(%S+)%s+HEAD")
  if head then return head, "origin's HEAD branch" end
  local r = repo:run({ "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD" }, { timeout = 15 })
  head = r and r.code == 0 and r.stdout:match("refs/remotes/origin/(%S+)")
  if head then return head, "origin's HEAD branch (as last fetched)" end
  return nil, errors.failure("not_found", ("origin has none of %s, and no HEAD branch: cannot choose the PR's base")
    :format(table.concat((function() local t = {} for i, w in ipairs(wanted) do t[i] = w.name end return t end)(), ", ")))
end

-- ===== pull and merge requests =====

local PR_FIELDS = "url,number,headRefName,baseRefName,state"

-- {url, number, head, base, state} from gh's or glab's JSON.
local function pr_shape(platform, doc)
  if platform == "github" then
    return { url = str(doc.url), number = tonumber(doc.number), head = str(doc.headRefName),
             base = str(doc.baseRefName), state = STATES[doc.state] or str(doc.state) }
  end
  return { url = str(doc.web_url), number = tonumber(doc.iid), head = str(doc.source_branch),
           base = str(doc.target_branch), state = STATES[doc.state] or str(doc.state) }
end

-- The PR `ref` (a number or a head branch) as the forge shows it; nil, failure (missing = true
-- when there is none).
local function view_pr(platform, ref, root)
  local doc, err
  if platform == "github" then
    doc, err = cli_json(platform, { "pr", "view", ref, "--json", PR_FIELDS }, { root = root })
  else
    doc, err = cli_json(platform, { "mr", "view", ref, "--output", "json" }, { root = root })
  end
  local r = err
  if not doc then
    if is_missing(err) then err.missing = true end
    return nil, err
  end
  local pr = pr_shape(platform, doc)
  if not (pr.url and pr.number and pr.head) then
    return nil, errors.failure("protocol", ("%s printed JSON without the request's url, number and head branch")
      :format(r.command))
  end
  return pr
end

-- The open PR whose head is `head`, or false when there is none; nil, failure when the
-- forge cannot be asked.
local function find_open(platform, head, root)
  if platform == "github" then
    local pr, err = view_pr(platform, head, root)     -- gh prefers the open one
    if not pr then
      if err.missing then return false end
      return nil, err
    end
    if pr.state == "open" and pr.head == head then return pr end
    return false
  end
  local r, err = cli_run(platform, { "mr", "list", "--source-branch", head, "--output", "json" }, { root = root })
  if not r then return nil, err end
  local list = json.decode(r.stdout)
  if list == json.null then list = {} end                -- encoding/json writes a nil list as null
  if type(list) ~= "table" then
    return nil, errors.failure("protocol", ("%s printed '%s', not the JSON list expected"):format(r.command,
      tidy(r.stdout, 200)), { command = r.command })
  end
  for _, doc in ipairs(list) do
    local pr = type(doc) == "table" and pr_shape(platform, doc)
    if pr and pr.state == "open" and pr.head == head and pr.url and pr.number then return pr end
  end
  return false
end

local function sleep(s)
  if s and s > 0 then
    local task = require "codeassist.task"
    if task.current() then task.sleep(s) else require("codeassist.clock").sleep(s) end
  end
end

-- Opens a PR (GitHub) or MR (GitLab) from head into base and checks the forge shows it:
-- {url, number, head, base, state, existing} or nil, failure. An open one for the same head
-- is returned (existing = true) instead of a duplicate; its base may differ from base.
function M.open_pr(platform, spec)
  check_platform(platform, "open_pr")
  errors.argcheck(type(spec) == "table", "forge.open_pr: give {root, head, base, title, body}")
  for _, k in ipairs{ "root", "head", "base", "title" } do
    errors.argcheck(type(spec[k]) == "string" and spec[k] ~= "", "forge.open_pr: %s must be a non-empty string", k)
  end
  errors.argcheck(spec.body == nil or type(spec.body) == "string", "forge.open_pr: body must be a string")
  errors.argcheck(spec.head ~= spec.base, "forge.open_pr: head and base are the same branch (%s)", spec.head)
  local root, head, base, body = spec.root, spec.head, spec.base, spec.body or ""
  local title = spec.title:gsub("%s+", " "):match("^ ?(.-) ?$")       -- one line, as the forge keeps it
  local what = platform == "github" and "pull request" or "merge request"

  local existing, err = find_open(platform, head, root)
  if existing == nil then return nil, err end
  if existing then existing.existing = true; return existing end

  local r
  if platform == "github" then
    r, err = cli_run(platform, { "pr", "create", "--head", head, "--base", base, "--title=" .. title,
                                 "--body-file", "-" }, { root = root, stdin = body })
  else
    if #body > 120000 then
      return nil, errors.failure("too_large", ("the description is %d bytes: glab takes it as one argument, at most 128 KiB")
        :format(#body))
    end
    r, err = cli_run(platform, { "mr", "create", "--source-branch", head, "--target-branch", base,
                                 "--title=" .. title, "--description=" .. body, "--yes" }, { root = root })
  end
  if not r then
    -- created meanwhile (or gh found one into this base): the existing one is the answer
    if err.kind == "exec" and (err.stderr or ""):find("already exists", 1, true) then
      existing = find_open(platform, head, root)
      if existing then existing.existing = true; return existing end
    end
    return nil, err
  end

  -- Verify: the request the CLI named (else the head's) must be visible, open, from head into base.
  local pattern = platform == "github" and "(https?://%S+/pull/(%d+))" or "(https?://%S+/merge_requests/(%d+))"
  local printed_url, printed_number = r.stdout:match(pattern)
  local ref = printed_number or head
  local pr, last
  for attempt = 1, #M.verify_delays + 1 do
    pr, last = view_pr(platform, ref, root)
    if pr or not last.missing then break end
    if attempt <= #M.verify_delays then sleep(M.verify_delays[attempt]) end
  end
  local said = tidy(r.stdout, 300)
  if not pr then
    return nil, errors.failure(last.kind == "exec" and "exec" or last.kind,
      ("%s reported success (%s) but the %s cannot be found: %s"):format(r.command,
        said ~= "" and said or "no output", what, last.message), { command = r.command, unverified = true })
  end
  local wrong
  if pr.head ~= head then wrong = ("its head is %s, not %s"):format(tostring(pr.head), head)
  elseif pr.base and pr.base ~= base then wrong = ("it targets %s, not %s"):format(pr.base, base)
  elseif pr.state ~= "open" then wrong = ("it is %s"):format(tostring(pr.state))
  elseif printed_url and pr.url ~= printed_url then wrong = ("the forge shows it at %s"):format(pr.url) end
  if wrong then
    return nil, errors.failure("protocol", ("%s printed %s, but the %s the forge shows is not the one asked for: %s")
      :format(r.command, said ~= "" and said or "nothing", what, wrong), { command = r.command, unverified = true })
  end
  pr.existing = false
  return pr
end

-- ===== names =====

-- Latin letters with marks, as their ASCII base (UTF-8 two-byte sequences).
local FOLD = {}
do
  local groups = { a = "àáâãäåā", c = "çćč", e = "èéêëēėę", i = "ìíîïī", n = "ñń", o = "òóôõöøō",
                   u = "ùúûüū", y = "ýÿ", s = "śš", z = "źżž", l = "ł", d = "ð" }
  for base, chars in pairs(groups) do
    for ch in chars:gmatch("[\192-\223][\128-\191]") do FOLD[ch] = base end
  end
  FOLD["ß"] = "ss"; FOLD["æ"] = "ae"; FOLD["œ"] = "oe"
end

-- A branch-name slug: lower-case ASCII words joined by "-", at most max (40) characters,
-- cut between words; "issue" when nothing is left.
function M.slug(title, max)
  errors.argcheck(type(title) == "string", "forge.slug: give a title")
  max = max or 40
  local s = title:gsub("[\192-\223][\128-\191]", function(c) return FOLD[c] end)
  s = s:gsub("[\195][\128-\158]", function(c)   -- capitals of Latin-1: fold via their lower case
    local lower = string.char(195, c:byte(2) + 32)
    return FOLD[lower]
  end)
  s = s:lower():gsub("'", "")
  local words = {}
  for w in s:gmatch("[a-z0-9]+") do words[#words + 1] = w end
  local out = ""
  for _, w in ipairs(words) do
    local next_out = out == "" and w or (out .. "-" .. w)
    if #next_out > max then
      if out == "" then out = w:sub(1, max) end
      break
    end
    out = next_out
  end
  return out ~= "" and out or "issue"
end

return M
