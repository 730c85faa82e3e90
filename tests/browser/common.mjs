// What both browser tests share: where the binary, Chromium and the outputs are, and how
// Chromium is started (Debian's, through playwright-core from web/node_modules).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
const require = createRequire(path.join(root, 'web/package.json'));
const { chromium } = require('playwright-core');

export const OUT = process.env.CUEPOINT_BROWSER_OUT || path.join(here, 'out');
export const BIN = process.env.CUEPOINT_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(root, 'target'), 'debug/cuepoint');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', ...extraArgs],
  });
}
