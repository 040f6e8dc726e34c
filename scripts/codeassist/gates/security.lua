-- security: vulnerabilities the change brings in (injection, secrets, unsafe input handling).
return require("codeassist.gates.common").reviewer{
  name = "security",
  penalty = { critical = 40, high = 20, medium = 5, low = 1 },
  prompt = [[You are a security auditor. Review the change below for vulnerabilities it introduces or
leaves open: injection (SQL, shell, path), unsafe deserialisation, secrets in code, missing input
validation, broken authentication or authorisation, unsafe file or network handling. Report each
real problem once, with its severity (critical: exploitable now; high: likely exploitable; medium:
needs unusual conditions; low: hardening; info: a note), the file and line, and how to fix it.
Do not report style. An empty findings list means the change is safe.]],
}
