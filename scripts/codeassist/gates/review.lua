-- review: code quality — correctness risks, duplication, complexity, naming, dead code.
return require("codeassist.gates.common").reviewer{
  name = "review",
  penalty = { critical = 25, high = 10, medium = 4, low = 1 },
  prompt = [[You are a senior code reviewer. Review the change below for correctness risks, duplicated
code, needless complexity, unclear names, dead code and missing error handling. Report each real
problem once with its severity (critical: wrong behaviour; high: likely bug or serious smell;
medium: clear smell; low: minor; info: a note), the file and line, and a concrete fix. Do not
report matters of taste. An empty findings list means the change is ready.]],
}
