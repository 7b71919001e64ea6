// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and exits 1, listing
// each diagnostic of severity error, when it finds any; warnings are printed but do not fail.
// Usage: node check.js path/to/asyncapi.json
'use strict';

const path = require('node:path');
const { Parser, fromFile, DiagnosticSeverity } = require('@asyncapi/parser');

function describe(diagnostic) {
  const where = (diagnostic.path || []).join('/') || '(document)';
  return `${where}: ${diagnostic.message} [${diagnostic.code}]`;
}

async function main(file) {
  if (!file) {
    console.error('usage: node check.js ASYNCAPI_FILE');
    return 2;
  }
  const parser = new Parser();
  // fromFile passes the file's location, so relative $refs (./<type>.json) resolve beside it.
  const { document, diagnostics } = await fromFile(parser, path.resolve(file)).parse();
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning)) {
    console.log(`warning: ${describe(d)}`);
  }
  for (const d of errors) {
    console.error(`error: ${describe(d)}`);
  }
  if (errors.length > 0 || document === undefined) {
    console.error(`${file}: ${errors.length} error(s); not a valid AsyncAPI document`);
    return 1;
  }
  console.log(`${file}: valid AsyncAPI ${document.version()}`);
  return 0;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`error: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  },
);
