'use strict';
// Runs the real extension against the stub `vscode` module, for the desktop's
// cross-language test: node drive.js <workspace-folder> <file> <language>
// It activates, opens the file, types once, and deactivates when stdin closes.

const Module = require('module');
const path = require('path');
const { createStub } = require('./stub-vscode');

const [folder, file, language] = process.argv.slice(2);
const stub = createStub({ folder });
const originalLoad = Module._load;
Module._load = function load(request, ...rest) {
  if (request === 'vscode') return stub.vscode;
  return originalLoad.call(this, request, ...rest);
};
const extension = require(path.join(__dirname, '..', 'extension.js'));
extension.activate({ subscriptions: [] });
stub.open(file, language);
stub.type();
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  extension.deactivate();
  setTimeout(() => process.exit(0), 100);
});
