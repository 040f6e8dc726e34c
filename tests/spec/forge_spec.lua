-- The forge against the gh and glab stubs (tests/fakes), real git and a local bare remote:
-- which forge, issues, comments that keep their Markdown, the PR's base, and PRs that are
-- created and then verified — never merely announced.
local support = require "support"
local forge = require "codeassist.forge"
local json = require "codeassist.json"
local fs = require "codeassist.fs"

local FAKES = support.root .. "/tests/fakes"
local state          -- the stubs' folder (FAKE_FORGE_DIR)

local function sh(script, cwd)
  local r = support.sh(script, { cwd = cwd })
  assert(r.code == 0, script .. ": " .. r.stderr)
  return r.stdout
end

local GIT = "git -c user.name=Spec -c user.email=spec@example.com -c init.defaultBranch=main "

-- A repository with one commit on `branch` (default feature/12-fix-login) and, unless
-- opts.remote == false, a bare remote `origin` holding opts.heads (branch names).
local function repo(opts)
  opts = opts or {}
  local dir = support.tmpdir()
  local root = dir .. "/work"
  sh(GIT .. "init -q work && cd work && echo hello > README.md && " .. GIT .. "add README.md && "
     .. GIT .. "commit -qm init && " .. GIT .. "checkout -qb '" .. (opts.branch or "feature/12-fix-login") .. "'", dir)
  if opts.remote ~= false then
    sh(GIT .. "init -q --bare " .. (opts.remote_head and ("--initial-branch=" .. opts.remote_head .. " ") or "")
       .. "remote.git", dir)
    sh("git remote add origin " .. dir .. "/remote.git", root)
    for _, head in ipairs(opts.heads or {}) do
      sh(GIT .. "push -q origin HEAD:refs/heads/" .. head, root)
    end
  end
  return root, dir
end

local function calls()
  local list = {}
  local text = fs.read(state .. "/calls.jsonl") or ""
  for line in text:gmatch("[^\n]+") do list[#list + 1] = assert(json.decode(line)) end
  return list
end

local function commands()
  local list = {}
  for i, c in ipairs(calls()) do list[i] = table.concat(c.argv, " ", 1, math.min(2, #c.argv)) end
  return list
end

local function issue_file(n, doc) support.write(("%s/issues/%d.json"):format(state, n), json.encode(doc)) end
local function touch(name) support.write(state .. "/" .. name, "") end
local function prs() return assert(json.decode(fs.read(state .. "/prs.json"))) end

local CFG = { git_rules = { branch_flow = { feature = "develop" } } }

-- Markdown every shell would mangle: a table, backquotes, $(...), quotes, a leading dash,
-- blank lines and a trailing newline.
local MARKDOWN = "- [x] gates passed\n\n| gate | score |\n|---|---:|\n| test | 98 |\n\n"
  .. "Run `make test`; never $(rm -rf /) or ${HOME} or \\n or 'single' \"double\" <b>&amp;</b>\n"
  .. "```sh\necho $PATH | tr ':' '\\n'\n```\n\ttab   spaces  \n\n"

describe("forge", function()
  local saved_path = os.getenv("PATH")

  before_each(function()
    state = support.tmpdir()
    forge.env = { PATH = FAKES .. ":" .. saved_path, FAKE_FORGE_DIR = state }
    forge.verify_delays = { 0.05 }
  end)

  after_each(function()
    forge.env = {}
    forge.verify_delays = { 1, 2, 4 }
    support.cleanup()
  end)

  describe("detect", function()
    it("says gitlab for .gitlab-ci.yml, before anything else", function()
      local root = repo()
      support.write(root .. "/.gitlab-ci.yml", "test:\n  script: make test\n")
      fs.mkdir_p(root .. "/.github/workflows")
      sh("git remote set-url origin git@github.com:acme/widgets.git", root)
      local platform, why = forge.detect(root)
      assert.equals("gitlab", platform)
      assert.matches(".gitlab-ci.yml", why, 1, true)
    end)

    it("says github for .github/workflows/", function()
      local root = repo()
      fs.mkdir_p(root .. "/.github/workflows")
      sh("git remote set-url origin https://gitlab.com/acme/widgets.git", root)
      local platform, why = forge.detect(root)
      assert.equals("github", platform)
      assert.matches(".github/workflows/", why, 1, true)
    end)

    it("reads origin's host, in https and ssh forms", function()
      local root = repo()
      for url, want in pairs{
        ["https://gitlab.com/acme/widgets.git"] = "gitlab",
        ["git@gitlab.example.org:group/sub/project.git"] = "gitlab",
        ["ssh://git@gitlab.internal:2222/group/project.git"] = "gitlab",
        ["https://oauth2:secret@gitlab.example.org/group/project.git"] = "gitlab",
        ["git@github.com:acme/widgets.git"] = "github",
        ["ssh://git@github.com/acme/widgets"] = "github",
        ["https://github.com/acme/gitlab-tools.git"] = "github",      -- the host decides, not the path
      } do
        sh("git remote set-url origin '" .. url .. "'", root)
        local platform, why = forge.detect(root)
        assert.equals(want, platform, url)
        assert.matches("^origin is on ", why)
        assert.not_matches("secret", why)
      end
    end)

    it("falls back to github, and says so", function()
      local root = repo{ remote = false }
      local platform, why = forge.detect(root)
      assert.equals("github", platform)
      assert.matches("GitHub assumed", why)
      sh("git remote add origin https://git.example.org/acme/widgets.git", root)
      platform, why = forge.detect(root)
      assert.equals("github", platform)
      assert.matches("git.example.org", why, 1, true)
      assert.equals("github", (forge.detect(support.tmpdir())))   -- not even a repository
    end)

    it("knows the host of every remote URL form", function()
      assert.equals("github.com", forge.url_host("https://github.com/a/b.git"))
      assert.equals("gitlab.com", forge.url_host("git@gitlab.com:a/b.git"))
      assert.equals("h.example", forge.url_host("ssh://u@h.example:22/a/b"))
      assert.equals("h.example", forge.url_host("https://user:pw@h.example/a"))
      assert.is_nil(forge.url_host("/srv/git/remote.git"))
    end)
  end)

  describe("check_cli", function()
    it("passes when the CLI runs", function()
      assert.is_true(forge.check_cli("github"))
      assert.is_true(forge.check_cli("gitlab"))
      assert.same({ "--version" }, calls()[1].argv)
    end)

    it("names the missing CLI and where to get it", function()
      forge.env.PATH = support.tmpdir()
      local ok, err = forge.check_cli("github")
      assert.is_nil(ok)
      assert.equals("not_found", err.kind)
      assert.equals("gh (the GitHub CLI) is not installed or not on PATH: install it from https://cli.github.com",
                    err.message)
      ok, err = forge.check_cli("gitlab")
      assert.is_nil(ok)
      assert.equals("not_found", err.kind)
      assert.matches("glab (the GitLab CLI) is not installed", err.message, 1, true)
      assert.matches("https://gitlab.com/gitlab-org/cli", err.message, 1, true)
      -- every command says the same, not a bare "command not found"
      local issue
      issue, err = forge.fetch_issue("github", 1, support.tmpdir())
      assert.is_nil(issue)
      assert.equals("not_found", err.kind)
      assert.matches("https://cli.github.com", err.message, 1, true)
    end)

    it("tells a missing repository folder from a missing CLI", function()
      local issue, err = forge.fetch_issue("github", 1, "/nonexistent/repository")
      assert.is_nil(issue)
      assert.equals("not_found", err.kind)
      assert.matches("gh issue view 1 .* could not run: .*working directory '/nonexistent/repository'", err.message)
      assert.not_matches("not installed", err.message)
    end)

    it("with auth, says how to log in when the CLI is not", function()
      touch("unauthenticated")
      assert.is_true(forge.check_cli("github"))                       -- installed ...
      local ok, err = forge.check_cli("github", { auth = true })     -- ... but not logged in
      assert.is_nil(ok)
      assert.equals("exec", err.kind)
      assert.is_true(err.auth)
      assert.matches("gh auth login", err.message, 1, true)
      assert.matches("GH_TOKEN", err.message, 1, true)
      ok, err = forge.check_cli("gitlab", { auth = true })
      assert.is_nil(ok)
      assert.matches("glab auth login", err.message, 1, true)
      forge.env.GITLAB_TOKEN = "glpat-spec-token-0000"
      assert.is_true(forge.check_cli("gitlab", { auth = true }))
    end)

    it("refuses an unknown platform at the caller's line", function()
      assert.has_error(function() forge.check_cli("bitbucket") end,
        'forge.check_cli: platform must be "github" or "gitlab", not bitbucket')
    end)
  end)

  describe("fetch_issue", function()
    it("reads a GitHub issue through gh issue view --json", function()
      local root = repo()
      issue_file(12, { title = "Fix the login", body = "It fails <b>&amp;</b>\n\n| a | b |\n", labels = { "bug", "good first issue" },
                       state = "open" })
      local issue = assert(forge.fetch_issue("github", 12, root))
      assert.same({ number = 12, title = "Fix the login", body = "It fails <b>&amp;</b>\n\n| a | b |\n",
                    labels = { "bug", "good first issue" }, url = "https://github.com/acme/widgets/issues/12",
                    state = "open", platform = "github" }, issue)
      local c = calls()[1]
      assert.same({ "issue", "view", "12", "--json", "number,title,body,labels,url,state" }, c.argv)
      assert.equals(root, c.cwd)
      -- what the stub printed is gh's shape: one line, keys sorted, labels as objects, OPEN
      local r = support.sh("gh issue view 12 --json state,labels", { cwd = root,
        env = { PATH = FAKES .. ":" .. saved_path, FAKE_FORGE_DIR = state } })
      assert.equals('{"labels":[{"color":"ededed","description":"","id":"LA_kwDOfake0000","name":"bug"},'
        .. '{"color":"ededed","description":"","id":"LA_kwDOfake0001","name":"good first issue"}],"state":"OPEN"}\n',
        r.stdout)
      r = support.sh("gh issue view 12 --json nope", { cwd = root, env = { PATH = FAKES .. ":" .. saved_path,
        FAKE_FORGE_DIR = state } })
      assert.equals(1, r.code)
      assert.matches('^Unknown JSON field: "nope"\nAvailable fields:\n  assignees\n', r.stderr)
    end)

    it("reads a GitLab issue through glab issue view --output json (iid, description, web_url)", function()
      local root = repo()
      issue_file(7, { title = "Ünïcode & <tags>", body = "x < y && y > z\n", labels = { "backend" }, state = "closed" })
      local issue = assert(forge.fetch_issue("gitlab", "7", root))
      assert.same({ number = 7, title = "Ünïcode & <tags>", body = "x < y && y > z\n", labels = { "backend" },
                    url = "https://gitlab.com/acme/widgets/-/issues/7", state = "closed", platform = "gitlab" }, issue)
      assert.same({ "issue", "view", "7", "--output", "json" }, calls()[1].argv)
      -- what the stub printed is glab's shape: the API's field names, HTML characters escaped
      local r = support.sh("glab issue view 7 --output json", { cwd = root,
        env = { PATH = FAKES .. ":" .. saved_path, FAKE_FORGE_DIR = state } })
      assert.matches('"iid":7', r.stdout, 1, true)
      assert.matches('"description":"x \\u003c y \\u0026\\u0026', r.stdout, 1, true)
      assert.matches('"state":"closed"', r.stdout, 1, true)
    end)

    it("says clearly that an issue does not exist", function()
      local root = repo()
      local issue, err = forge.fetch_issue("github", 999, root)
      assert.is_nil(issue)
      assert.equals("exec", err.kind)
      assert.is_true(err.missing)
      assert.matches("^issue #999 was not found on GitHub: gh issue view 999 ", err.message)
      assert.matches("Could not resolve to an issue or pull request with the number of 999", err.message, 1, true)
      issue, err = forge.fetch_issue("gitlab", 999, root)
      assert.is_nil(issue)
      assert.is_true(err.missing)
      assert.matches("^issue #999 was not found on GitLab: glab issue view 999 ", err.message)
      assert.matches("404 {message: 404 Not found}", err.message, 1, true)
    end)

    it("refuses what is not an issue number", function()
      assert.has_error(function() forge.fetch_issue("github", "12; rm -rf /", "/tmp") end)
      assert.has_error(function() forge.fetch_issue("github", 0, "/tmp") end)
      issue_file(12, { title = "t" })
      assert.equals(12, forge.fetch_issue("github", "#12", repo()).number)
    end)

    it("calls output that is not JSON a protocol failure", function()
      local bin = support.tmpdir()
      support.write(bin .. "/gh", "#!/bin/sh\necho 'Welcome to the new gh!'\n")
      sh("chmod +x " .. bin .. "/gh")
      forge.env.PATH = bin .. ":" .. saved_path
      local issue, err = forge.fetch_issue("github", 3, repo())
      assert.is_nil(issue)
      assert.equals("protocol", err.kind)
      assert.matches("gh issue view 3 --json number,title,body,labels,url,state printed 'Welcome to the new gh!', "
                     .. "not the JSON expected", err.message, 1, true)
    end)

    it("keeps tokens out of argv and out of messages", function()
      local bin = support.tmpdir()
      support.write(bin .. "/gh", "#!/bin/sh\necho \"HTTP 401: Bad credentials ($GH_TOKEN)\" >&2\nexit 1\n")
      sh("chmod +x " .. bin .. "/gh")
      forge.env.PATH = bin .. ":" .. saved_path
      forge.env.GH_TOKEN = "ghp_0123456789abcdefSECRET"
      local issue, err = forge.fetch_issue("github", 3, repo())
      assert.is_nil(issue)
      assert.is_true(err.auth)
      assert.not_matches("SECRET", err.message)
      assert.matches("Bad credentials (***)", err.message, 1, true)
      assert.matches("gh auth login", err.message, 1, true)
    end)

    it("still has the token after the agent removed it from the environment", function()
      local root = repo()
      issue_file(12, { title = "Fix the login", body = "b" })
      touch("unauthenticated")     -- no stored login: only GH_TOKEN can authenticate
      local script = support.write(support.tmpdir() .. "/fetch.lua", [[
        local forge = require "codeassist.forge"
        require("codeassist.host").forget_env("GH_TOKEN")     -- what agent.run does
        assert(os.getenv("GH_TOKEN") == nil)
        local issue, err = forge.fetch_issue("github", 12, arg[1])
        if not issue then io.stderr:write(err.message, "\n") return 1 end
        io.write(issue.title)
      ]])
      local r = support.codeassist({ "run", script, root }, { env = { GH_TOKEN = "ghp_spec0000000000TOKEN",
        PATH = FAKES .. ":" .. saved_path, FAKE_FORGE_DIR = state } })
      assert.equals("", r.stderr)
      assert.equals(0, r.code)
      assert.equals("Fix the login", r.stdout)
      local c = calls()[1]
      assert.same({ "GH_TOKEN" }, c.auth)
      for _, a in ipairs(c.argv) do assert.not_matches("TOKEN", a) end
    end)
  end)

  describe("issue_from_file", function()
    it("takes the number from the file name, the title from the first heading, the body from the rest", function()
      local dir = support.tmpdir()
      local path = support.write(dir .. "/123-fix-login.md",
        "# Fix the login bug #\n\nUsers cannot log in.\n\n## Steps\n\n1. open\n")
      assert.same({ number = 123, title = "Fix the login bug", body = "Users cannot log in.\n\n## Steps\n\n1. open",
                    labels = {}, state = "open", path = path, platform = "file" }, forge.issue_from_file(path))
    end)

    it("reads front matter: number, labels", function()
      local dir = support.tmpdir()
      local path = support.write(dir .. "/login.md",
        "---\nnumber: 45\nlabels: [bug, auth]\n---\nIntro before the heading.\n\n# The title\nBody.\n")
      local issue = forge.issue_from_file(path)
      assert.equals(45, issue.number)
      assert.equals("The title", issue.title)
      assert.equals("Intro before the heading.\n\nBody.", issue.body)
      assert.same({ "bug", "auth" }, issue.labels)
    end)

    it("without a heading, is named after the file; without a number, has none", function()
      local dir = support.tmpdir()
      local path = support.write(dir .. "/tidy-the-config.md",
        "```sh\n# not a heading\n```\n\nJust text.\n")
      local issue = forge.issue_from_file(path)
      assert.is_nil(issue.number)
      assert.equals("tidy-the-config", issue.title)
      assert.equals("```sh\n# not a heading\n```\n\nJust text.", issue.body)
      assert.equals("tidy-the-config", forge.slug(issue.title))
    end)

    it("fails as the file system does for a missing file", function()
      local issue, err = forge.issue_from_file("/nonexistent/12-x.md")
      assert.is_nil(issue)
      assert.equals("not_found", err.kind)
    end)
  end)

  describe("comment", function()
    it("sends Markdown to gh byte for byte, through stdin", function()
      local root = repo()
      issue_file(12, { title = "t" })
      local ok, url = forge.comment("github", 12, MARKDOWN, root)
      assert.is_true(ok)
      assert.matches("^https://github.com/acme/widgets/issues/12#issuecomment%-%d+$", url)
      local c = calls()[1]
      assert.same({ "issue", "comment", "12", "--body-file", "-" }, c.argv)
      assert.equals(MARKDOWN, c.stdin)
      local stored = assert(json.decode(fs.read(state .. "/comments.json")))
      assert.equals(MARKDOWN, stored[1].body)
    end)

    it("sends Markdown to glab byte for byte, as one argument", function()
      local root = repo()
      issue_file(12, { title = "t" })
      local ok, url = forge.comment("gitlab", 12, MARKDOWN, root)
      assert.is_true(ok)
      assert.matches("^https://gitlab.com/acme/widgets/%-/issues/12#note_%d+$", url)
      assert.same({ "issue", "note", "12", "--message=" .. MARKDOWN }, calls()[1].argv)
      local stored = assert(json.decode(fs.read(state .. "/comments.json")))
      assert.equals(MARKDOWN, stored[1].body)
    end)

    it("fails for a missing issue, naming it", function()
      local root = repo()
      local ok, err = forge.comment("github", 41, "hi", root)
      assert.is_nil(ok)
      assert.is_true(err.missing)
      assert.matches("^cannot comment on issue #41: gh issue comment 41 %-%-body%-file %- failed %(exit 1%)", err.message)
      ok, err = forge.comment("gitlab", 41, "hi", root)
      assert.is_nil(ok)
      assert.matches("404", err.message, 1, true)
    end)
  end)

  describe("target_branch", function()
    it("is branch_flow.feature when the remote has it", function()
      local root = repo{ heads = { "main", "staging", "develop" } }
      local base, why = forge.target_branch(root, CFG)
      assert.equals("develop", base)
      assert.matches("branch_flow.feature", why, 1, true)
      assert.equals("release/next", (forge.target_branch(
        repo{ heads = { "main", "develop", "release/next" } }, { git_rules = { branch_flow = { feature = "release/next" } } })))
    end)

    it("without develop, is the first of staging, main, master on the remote", function()
      assert.equals("staging", (forge.target_branch(repo{ heads = { "main", "staging" } }, CFG)))
      assert.equals("main", (forge.target_branch(repo{ heads = { "master", "main" } }, CFG)))
      assert.equals("master", (forge.target_branch(repo{ heads = { "master" } }, nil)))
      -- an exact ref: feature/develop is not develop
      assert.equals("main", (forge.target_branch(repo{ heads = { "feature/develop", "main" } }, CFG)))
    end)

    it("else is the remote's HEAD branch", function()
      local root = repo{ remote_head = "trunk", heads = { "trunk", "feature/other" } }
      local base, why = forge.target_branch(root, CFG)
      assert.equals("trunk", base)
      assert.equals("origin's HEAD branch", why)
    end)

    it("fails, saying why, without an origin", function()
      local base, err = forge.target_branch(repo{ remote = false }, CFG)
      assert.is_nil(base)
      assert.equals("exec", err.kind)
      assert.matches("git ls%-remote", err.message)
    end)
  end)

  describe("open_pr", function()
    local function spec(root, extra)
      local s = { root = root, head = "feature/12-fix-login", base = "develop", title = "Fix the login (#12)",
                  body = MARKDOWN }
      for k, v in pairs(extra or {}) do s[k] = v end
      return s
    end

    it("creates a GitHub PR and verifies it", function()
      local root = repo{ heads = { "main", "develop", "feature/12-fix-login" } }
      touch("check_branches")
      local pr = assert(forge.open_pr("github", spec(root)))
      assert.same({ url = "https://github.com/acme/widgets/pull/1", number = 1, head = "feature/12-fix-login",
                    base = "develop", state = "open", existing = false }, pr)
      local c = calls()
      assert.same({ "pr", "view", "feature/12-fix-login", "--json", "url,number,headRefName,baseRefName,state" }, c[1].argv)
      assert.same({ "pr", "create", "--head", "feature/12-fix-login", "--base", "develop",
                    "--title=Fix the login (#12)", "--body-file", "-" }, c[2].argv)
      assert.equals(MARKDOWN, c[2].stdin)
      assert.same({ "pr", "view", "1", "--json", "url,number,headRefName,baseRefName,state" }, c[3].argv)
      assert.equals(MARKDOWN, prs()[1].body)
    end)

    it("creates a GitLab MR and verifies it", function()
      local root = repo{ heads = { "main", "develop", "feature/12-fix-login" } }
      touch("check_branches")
      local pr = assert(forge.open_pr("gitlab", spec(root)))
      assert.same({ url = "https://gitlab.com/acme/widgets/-/merge_requests/1", number = 1,
                    head = "feature/12-fix-login", base = "develop", state = "open", existing = false }, pr)
      assert.same({ "mr list", "mr create", "mr view" }, commands())
      local c = calls()
      assert.same({ "mr", "create", "--source-branch", "feature/12-fix-login", "--target-branch", "develop",
                    "--title=Fix the login (#12)", "--description=" .. MARKDOWN, "--yes" }, c[2].argv)
      assert.same({ "mr", "view", "1", "--output", "json" }, c[3].argv)
      assert.equals(MARKDOWN, prs()[1].body)
    end)

    it("returns the open PR of the same head instead of a duplicate", function()
      local root = repo()
      support.write(state .. "/prs.json", json.encode{
        { number = 8, title = "old", body = "", head = "feature/12-fix-login", base = "main", state = "open",
          url = "https://github.com/acme/widgets/pull/8" } })
      for _, platform in ipairs{ "github", "gitlab" } do
        local pr = assert(forge.open_pr(platform, spec(root)))
        assert.is_true(pr.existing)
        assert.equals(8, pr.number)
        assert.equals("main", pr.base)                  -- its own base, which the loop may compare
      end
      assert.same({ "pr view", "mr list" }, commands())
      assert.equals(1, #prs())
    end)

    it("opens a new one when the head's earlier PR was closed or merged", function()
      local root = repo()
      local earlier = json.encode{
        { number = 3, title = "first try", head = "feature/12-fix-login", base = "develop", state = "closed" },
        { number = 5, title = "merged", head = "feature/12-fix-login", base = "develop", state = "merged" } }
      for _, platform in ipairs{ "github", "gitlab" } do
        support.write(state .. "/prs.json", earlier)
        local pr = assert(forge.open_pr(platform, spec(root)))
        assert.equals(6, pr.number)
        assert.is_false(pr.existing)
        assert.equals(3, #prs())
      end
      -- glab's `mr view BRANCH` is ambiguous now (three MRs): the IID glab printed is what was verified
      local r = support.sh("glab mr view feature/12-fix-login --output json", { cwd = root,
        env = { PATH = FAKES .. ":" .. saved_path, FAKE_FORGE_DIR = state } })
      assert.equals(1, r.code)
      assert.matches("Possible matches", r.stderr, 1, true)
      assert.same({ "mr", "view", "6", "--output", "json" }, calls()[#calls() - 1].argv)
    end)

    it("fails when the PR cannot be seen after a create that said it succeeded", function()
      local root = repo()
      touch("fail_pr_create")
      local pr, err = forge.open_pr("github", spec(root))
      assert.is_nil(pr)
      assert.equals("exec", err.kind)
      assert.is_true(err.unverified)
      assert.matches("gh pr create --head feature/12-fix-login --base develop '--title=Fix the login (#12)' "
                     .. "--body-file - reported success (https://github.com/acme/widgets/pull/1) but the pull "
                     .. "request cannot be found", err.message, 1, true)
      assert.matches("Could not resolve to a PullRequest with the number of 1", err.message, 1, true)
      assert.same({ "pr view", "pr create", "pr view", "pr view" }, commands())    -- retried once
      pr, err = forge.open_pr("gitlab", spec(root))
      assert.is_nil(pr)
      assert.is_true(err.unverified)
      assert.matches("but the merge request cannot be found", err.message, 1, true)
    end)

    it("fails when the verified PR is not the one asked for", function()
      local bin = support.tmpdir()
      -- a gh whose create "works" but whose view shows another base
      support.write(bin .. "/gh", ([[#!/bin/sh
case "$1 $2" in
  "pr create") echo https://github.com/acme/widgets/pull/4 ;;
  "pr view") if [ "$3" = 4 ]; then echo '{"baseRefName":"main","headRefName":"feature/12-fix-login","number":4,"state":"OPEN","url":"https://github.com/acme/widgets/pull/4"}'
             else echo 'no pull requests found for branch "x"' >&2; exit 1; fi ;;
esac
]]))
      sh("chmod +x " .. bin .. "/gh")
      forge.env.PATH = bin .. ":" .. saved_path
      local root = repo()
      local pr, err = forge.open_pr("github", spec(root))
      assert.is_nil(pr)
      assert.equals("protocol", err.kind)
      assert.matches("it targets main, not develop", err.message, 1, true)
    end)

    it("passes on the forge's refusal when the branch is not on the remote", function()
      local root = repo{ heads = { "develop" } }
      touch("check_branches")
      local pr, err = forge.open_pr("github", spec(root))
      assert.is_nil(pr)
      assert.equals("exec", err.kind)
      assert.matches("Head sha can't be blank", err.message, 1, true)
      pr, err = forge.open_pr("gitlab", spec(root))
      assert.is_nil(pr)
      assert.matches('Source branch "feature/12-fix-login" does not exist', err.message, 1, true)
      assert.same({}, json.decode(fs.read(state .. "/prs.json") or "[]"))
    end)

    it("refuses a spec without a head, a base or a title", function()
      assert.has_error(function() forge.open_pr("github", { root = "/tmp", base = "main", title = "t" }) end,
        "forge.open_pr: head must be a non-empty string")
      assert.has_error(function()
        forge.open_pr("github", { root = "/tmp", head = "main", base = "main", title = "t" })
      end, "forge.open_pr: head and base are the same branch (main)")
    end)
  end)

  describe("slug", function()
    it("makes branch names from titles", function()
      assert.equals("fix-the-login-bug", forge.slug("Fix the login bug!"))
      assert.equals("dont-crash-on-empty-yaml-files", forge.slug("Don't crash on *empty* YAML files"))
      assert.equals("resume-cafe-ubersicht", forge.slug("Résumé café — Übersicht"))
      assert.equals("add-oauth2-support-for-the-gitlab-api", forge.slug("  Add OAuth2 support for the GitLab API  "))
      local long = forge.slug("Refactor the configuration loader so that every value is checked before use")
      assert.equals("refactor-the-configuration-loader-so", long)
      assert.is_true(#long <= 40)
      assert.equals(40, #forge.slug(("x"):rep(100)))
      assert.equals("issue", forge.slug("日本語のタイトル"))
      assert.equals("issue", forge.slug(""))
    end)
  end)
end)
