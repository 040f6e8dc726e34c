-- codeassist.fs: capped reads, atomic writes, listing, glob, and confinement to a workspace.
local fs = require "codeassist.fs"
local support = require "support"

describe("codeassist.fs", function()
  local dir, root
  before_each(function()
    dir = support.tmpdir()
    root = dir .. "/root"
    assert(fs.mkdir_p(root .. "/sub"))
    assert(fs.mkdir_p(dir .. "/outside"))
    support.sh(("ln -s '%s/outside' '%s/link' && ln -s sub '%s/inlink' && ln -s /etc/passwd '%s/pw'")
      :format(dir, root, root, root))
  end)
  after_each(support.cleanup)

  -- The failure a call returned in place of its value, after checking it is one of kind.
  local function failed(kind, value, err)
    assert.is_nil(value)
    assert.are.equal(kind, err.kind, tostring(err))
    assert.are.equal(err.message, tostring(err))
    return err.message
  end

  describe("confine", function()
    local function refused(path)
      local p, err = fs.confine(root, path)
      assert.is_nil(p, path)
      assert.are.equal("escape", err.kind)
      assert.are.equal(path, err.path)
      assert.matches("escapes the workspace", err.message)
      return err.message
    end

    it("refuses ../x, /etc/passwd and symlinks that point outside", function()
      assert.matches("resolves to '" .. dir:gsub("%p", "%%%0") .. "/x'", refused("../x"))
      assert.matches("resolves to '/etc/passwd'", refused("/etc/passwd"))
      assert.matches("resolves to '.*/outside'", refused("link"))
      assert.matches("resolves to '.*/outside/secret.txt'", refused("link/secret.txt"))
      assert.matches("resolves to '/etc/passwd'", refused("pw"))
      assert.matches("resolves to '.*/outside/x'", refused("sub/../../outside/x"))
    end)

    it("resolves paths inside, including ones that do not exist yet", function()
      assert.are.equal(root, fs.confine(root, "."))
      assert.are.equal(root .. "/sub/a.txt", fs.confine(root, "inlink/a.txt"))
      assert.are.equal(root .. "/new/deeper/file", fs.confine(root, "new/deeper/file"))
      assert.are.equal(root .. "/sub", fs.confine(root, root .. "/sub"))
      assert.are.equal(root .. "/sub", fs.confine(root, "sub/../sub"))
    end)

    it("refuses a symlink created later under a name that did not exist", function()
      assert.are.equal(root .. "/later/x", fs.confine(root, "later/x"))
      support.sh(("ln -s '%s/outside' '%s/later'"):format(dir, root))
      refused("later/x")
      support.sh(("ln -s '%s/nowhere' '%s/dangling'"):format(dir, root))
      local p, err = fs.confine(root, "dangling/x")
      assert.matches("goes through a symbolic link whose target does not exist",
        failed("escape", p, err))
    end)

    it("explains an empty path or a missing root", function()
      assert.are.equal("empty path", failed("not_found", fs.confine(root, "")))
      assert.matches("^workspace root '.*/nope': No such file",
        failed("not_found", fs.confine(dir .. "/nope", "a")))
    end)
  end)

  it("reads with a size cap and says why it refused", function()
    support.write(root .. "/f.txt", "hello")
    assert.are.equal("hello", fs.read(root .. "/f.txt"))
    local s, err = fs.read(root .. "/f.txt", { max_bytes = 2 })
    assert.matches("f%.txt': it is 5 bytes, more than the limit of 2", failed("too_large", s, err))
    assert.are.equal(root .. "/f.txt", err.path)
    assert.matches("sub': it is a directory", failed("io", fs.read(root .. "/sub")))
    assert.matches("^cannot read '.*none': No such file", failed("not_found", fs.read(root .. "/none")))
    if support.sh("id -u").stdout ~= "0\n" then
      support.sh("chmod 000 '" .. root .. "/f.txt'")
      assert.matches("f%.txt': Permission denied", failed("permission", fs.read(root .. "/f.txt")))
    end
    local ok, e = pcall(function() local s = fs.read(root .. "/f.txt", { max_bytes = -1 }); return s end)
    assert.is_false(ok)
    assert.matches("^tests/spec/fs_spec%.lua:%d+: bad argument #2 to 'read' %(max_bytes must be a number >= 0%)", e)
  end)

  it("writes atomically, leaving no temp file, and keeps the old file on failure", function()
    local path = root .. "/state.json"
    assert(fs.write_atomic(path, "one"))
    assert(fs.write_atomic(path, "two"))
    assert.are.equal("two", fs.read(path))
    assert.are.same({ "inlink", "link", "pw", "state.json", "sub" }, fs.list(root))
    assert(fs.write_atomic(root .. "/mode", "x", { mode = tonumber("600", 8) }))
    assert.are.equal(tonumber("600", 8), fs.stat(root .. "/mode").mode)
    assert.matches("^cannot write '.*nodir/x': No such file",
      failed("not_found", fs.write_atomic(dir .. "/nodir/x", "a")))
    -- a read-only folder: the write fails cleanly and the old content stays
    if support.sh("id -u").stdout ~= "0\n" then
      support.sh("chmod 500 '" .. root .. "'")
      assert.matches("state%.json': Permission denied", failed("permission", fs.write_atomic(path, "three")))
      support.sh("chmod 700 '" .. root .. "'")
      assert.are.equal("two", fs.read(path))
    end
  end)

  it("makes nested folders and reports what is in the way", function()
    assert(fs.mkdir_p(root .. "/a/b/c"))
    assert(fs.mkdir_p(root .. "/a/b/c"))
    assert.are.equal("dir", fs.stat(root .. "/a/b/c").type)
    support.write(root .. "/file", "")
    assert.matches("^cannot create directory '.*/file/q': Not a directory",
      failed("exists", fs.mkdir_p(root .. "/file/q")))
  end)

  it("lists sorted names and stats with or without following links", function()
    assert.are.same({ "inlink", "link", "pw", "sub" }, fs.list(root))
    assert.are.equal("link", fs.stat(root .. "/link", { follow = false }).type)
    assert.are.equal("dir", fs.stat(root .. "/link").type)
    assert.matches("^cannot stat '.*/none': No such file", failed("not_found", fs.stat(root .. "/none")))
    assert.matches("^cannot list '.*/none': No such file", failed("not_found", fs.list(root .. "/none")))
  end)

  it("globs with * and **, sorted, skipping dotfiles and capped", function()
    for _, f in ipairs{ "a.lua", "b.txt", ".hidden.lua", "sub/c.lua", "sub/d/e.lua", "sub/d/.x/f.lua" } do
      support.write(root .. "/" .. f, "")
    end
    assert.are.same({ root .. "/a.lua" }, fs.glob(root .. "/*.lua"))
    assert.are.same({ root .. "/a.lua", root .. "/sub/c.lua", root .. "/sub/d/e.lua" },
      fs.glob(root .. "/**/*.lua"))
    assert.are.same({ root .. "/.hidden.lua" }, fs.glob(root .. "/.*.lua"))
    local some, truncated = fs.glob(root .. "/**/*.lua", { max = 2 })
    assert.are.equal(2, #some)
    assert.is_true(truncated)
    local all
    all, truncated = fs.glob(root .. "/**/*.lua", { max = 3 })
    assert.are.equal(3, #all)
    assert.is_false(truncated)
    assert.are.same({}, fs.glob(root .. "/nothing/*"))
  end)
end)
