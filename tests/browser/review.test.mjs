// The review app in a real browser: playwright-core (web/node_modules) driving the system's
// Chromium against `cuepoint serve` running the whole embedded pipeline.
//
//   CUEPOINT_BIN=target/debug/cuepoint node --test tests/browser/
//
// Uploads a generated clip from the page, waits for COMPLETE, plays the video, seeks on the
// timeline, moves a break and checks the VMAP changed (previous version kept) and the ladder was
// packaged again with its cue at the new time, searches for a
// label or transcript word and opens the hit, refuses a non-media upload. Screenshots and the
// step timings go to tests/browser/out/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BIN, OUT, launchChromium } from './common.mjs';

const TOKEN = 'browser-test-token';
const timings = [];

async function step(name, fn) {
  const t0 = Date.now();
  const r = await fn();
  const ms = Date.now() - t0;
  timings.push([name, ms]);
  console.log(`step ${name}: ${(ms / 1000).toFixed(1)} s`);
  return r;
}

// A 14 s clip: picture and sound, a 1.5 s black silent gap at 6 s, then other picture and
// sound. Spoken words when espeak-ng is there (the transcript has something to find).
function makeClip(dir) {
  const clip = path.join(dir, 'harbour-walk.mp4');
  const haveEspeak = (() => { try { execFileSync('espeak-ng', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();
  let audioIn, audioGraph;
  if (haveEspeak) {
    execFileSync('espeak-ng', ['-w', path.join(dir, 's1.wav'), 'The lighthouse keeper walks along the harbour every morning.']);
    execFileSync('espeak-ng', ['-w', path.join(dir, 's2.wav'), 'Fishing boats come back with the evening tide.']);
    audioIn = ['-i', path.join(dir, 's1.wav'), '-i', path.join(dir, 's2.wav')];
    audioGraph = '[3:a]aresample=48000,apad=whole_dur=6[a0];[4:a]aresample=48000,apad=whole_dur=6.5[a2];' +
      'aevalsrc=0:s=48000:d=1.5[a1];[a0][a1][a2]concat=n=3:v=0:a=1[a]';
  } else {
    audioIn = [];
    audioGraph = "aevalsrc='if(between(t,6,7.5),0,0.3*sin(2*PI*440*t))':s=48000:d=14[a]";
  }
  execFileSync('ffmpeg', ['-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=25:d=6',
    '-f', 'lavfi', '-i', 'color=c=black:s=320x180:r=25:d=1.5',
    '-f', 'lavfi', '-i', 'smptebars=s=320x180:r=25:d=6.5',
    ...audioIn,
    '-filter_complex', `[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v];${audioGraph}`,
    '-map', '[v]', '-map', '[a]', '-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac', '-ac', '1', clip]);
  return { clip, haveEspeak };
}

function startServer(dataDir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['serve', '--data-dir', dataDir, '--bind', '127.0.0.1:0', '--token', TOKEN, '--log', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const logFile = fs.createWriteStream(path.join(OUT, 'serve.log'));
    proc.stderr.pipe(logFile);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/([0-9.:]+)\//.exec(out);
      if (m) resolve({ proc, base: `http://${m[1]}` });
    });
    proc.on('exit', (code) => reject(new Error(`cuepoint serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error('cuepoint serve did not start in 60 s')), 60000);
  });
}

test('review app in a real browser: upload, play, move a break, search', { timeout: 15 * 60 * 1000 }, async () => {
  fs.mkdirSync(OUT, { recursive: true });
  assert.ok(fs.existsSync(BIN), `no cuepoint binary at ${BIN} (set CUEPOINT_BIN)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cuepoint-browser-'));
  const { clip, haveEspeak } = await step('generate clip', async () => makeClip(work));
  const { proc, base } = await startServer(path.join(work, 'data'));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));

    // The token once in the address; the cookie carries it from then on.
    await page.goto(`${base}/?token=${TOKEN}`);
    assert.equal(new URL(page.url()).search, '', 'token removed from the address');
    const api = async (p, init) => {
      const r = await page.request.fetch(`${base}${p}`, init);
      return { status: r.status(), body: await r.text() };
    };

    await step('non-media upload refused', async () => {
      const notes = path.join(work, 'notes.mp4');
      fs.writeFileSync(notes, 'these are meeting notes, not a video');
      await page.setInputFiles('#file', notes);
      await page.click('#upload');
      const msg = await page.locator('#upload-error').textContent({ timeout: 30000 });
      assert.match(msg, /not usable media/);
    });

    const assetId = await step('upload clip', async () => {
      await page.setInputFiles('#file', clip);
      await page.click('#upload');
      await page.locator('#upload-ok').waitFor({ timeout: 60000 });
      return page.locator('#upload-ok').getAttribute('data-asset');
    });
    assert.match(assetId, /^a[0-9a-f]{20}$/);
    await step('pipeline to COMPLETE (assets page polling)', async () => {
      await page.locator(`tr[data-id="${assetId}"][data-state="COMPLETE"]`).waitFor({ timeout: 10 * 60 * 1000 });
    });
    await page.screenshot({ path: path.join(OUT, 'assets.png'), fullPage: true });

    await step('asset page loads', async () => {
      await page.click(`tr[data-id="${assetId}"] a`);
      await page.locator('body[data-loaded="true"]').waitFor({ timeout: 30000 });
    });
    assert.equal(await page.locator('#hls-missing').count(), 0, 'hls.js is served by the app');

    await step('play the video', async () => {
      await page.evaluate(() => document.getElementById('video').play());
      await page.waitForFunction(() => document.getElementById('video').currentTime > 1.0, null, { timeout: 30000 });
    });

    await step('click-to-seek on the timeline', async () => {
      await page.evaluate(() => document.getElementById('video').pause());
      const box = await page.locator('#timeline-svg').boundingBox();
      // 100 of 1200 view units are labels; click three quarters along the time axis.
      const x = box.x + box.width * ((100 + 0.75 * 1090) / 1200);
      await page.mouse.click(x, box.y + box.height - 30);
      const t = await page.evaluate(() => document.getElementById('video').currentTime);
      assert.ok(Math.abs(t - 0.75 * 14) < 1.0, `seeked to ${t}`);
    });

    const before = JSON.parse((await api(`/api/assets/${assetId}/breaks`)).body);
    assert.ok(before.breaks.length >= 1, `the clip's black silent gap gives a break: ${JSON.stringify(before.breaks)}`);
    assert.equal(before.version, 1);
    const vmapBefore = (await api(`/media/${assetId}/ad_breaks.vmap`)).body;
    await page.screenshot({ path: path.join(OUT, 'asset.png'), fullPage: false });

    const from = before.breaks[0].timestamp;
    // On the clip's 25 fps frame grid: a saved break is put on a frame (the first frame after the
    // cut), so that the packaged ladder can start a segment exactly there.
    const to = Math.round((from + 1.5) * 25) / 25;
    await step('move a break and save', async () => {
      await page.locator('.break-row .move-btn').first().click();
      await page.locator('.break-row .move-time').first().fill(fmt(to));
      await page.locator('.break-row .move-apply').first().click();
      await page.fill('#editor', 'browser test');
      await page.click('#save');
      await page.locator('#saved').waitFor({ timeout: 30000 });
    });
    const after = JSON.parse((await api(`/api/assets/${assetId}/breaks`)).body);
    assert.equal(after.version, 2);
    assert.ok(after.breaks.some((b) => Math.abs(b.timestamp - to) < 0.001), JSON.stringify(after.breaks));
    assert.match(after.history[0].summary, /^moved /);
    assert.equal(after.history[0].by, 'browser test');
    const vmapAfter = (await api(`/media/${assetId}/ad_breaks.vmap`)).body;
    assert.notEqual(vmapAfter, vmapBefore, 'the VMAP changed');
    assert.ok(vmapAfter.includes(`timeOffset="${fmt(to)}"`), vmapAfter);
    assert.equal((await api(`/media/${assetId}/vmap/v1.vmap`)).body, vmapBefore, 'version 1 kept');
    assert.equal((await api(`/media/${assetId}/vmap/v2.vmap`)).body, vmapAfter);
    await page.screenshot({ path: path.join(OUT, 'asset-edited.png'), fullPage: true });
    // The edit is packaged again: once the asset is complete, every rendition starts a segment
    // at the moved break and carries its cue there.
    await step('edited break packaged into the ladder', async () => {
      for (let i = 0; ; i++) {
        const a = JSON.parse((await api(`/api/assets/${assetId}`)).body);
        const state = a.state || (a.asset && a.asset.state);
        if (state === 'COMPLETE') {
          const master = (await api(`/media/${assetId}/hls/index.m3u8`)).body;
          const media = [...master.matchAll(/^([^#\s].*\.m3u8)\s*$/gm)].map((m) => m[1]);
          assert.ok(media.length >= 1, master);
          let cued = 0;
          for (const m of media) {
            const text = (await api(`/media/${assetId}/hls/${m}`)).body;
            let t = 0;
            const cues = [];
            for (const line of text.split('\n')) {
              if (line.startsWith('#EXT-X-CUE-OUT')) cues.push(t);
              const d = /^#EXTINF:([0-9.]+)/.exec(line);
              if (d) t += Number(d[1]);
            }
            if (cues.some((c) => Math.abs(c - to) < 0.001)) cued += 1;
          }
          if (cued === media.length) break;
        }
        assert.ok(i < 600, `the moved break at ${to} s is not packaged into every rendition`);
        await new Promise((r) => setTimeout(r, 200));
      }
    });

    // What to search for: a label and a transcript word when the models found any, and the
    // file name always.
    const ins = JSON.parse((await api(`/api/assets/${assetId}/insights`)).body);
    const queries = [['asset', 'harbour walk']];
    // The project's test command installs the models and espeak-ng: then the spoken words must
    // be there to search for (test patterns need not carry a label).
    if (process.env.CUEPOINT_REQUIRE_MODELS === '1') {
      assert.ok(haveEspeak, 'espeak-ng expected (tests/install.sh installs it)');
      assert.ok(ins.transcript_items.length, `a transcript expected: ${JSON.stringify(ins.transcript)}`);
    }
    if (ins.label_items.length) queries.push(['label', ins.label_items[0].name]);
    else console.log(`no labels to search for (labels: ${ins.labels.status} ${ins.labels.message || ''})`);
    const words = ins.transcript_items.flatMap((p) => p.text.split(/[^\p{L}\p{N}]+/u)).filter((w) => w.length >= 5);
    if (words.length) queries.push(['transcript', words[0]]);
    else console.log(`no transcript words to search for (transcript: ${ins.transcript.status} ${ins.transcript.message || ''}; espeak-ng ${haveEspeak ? 'used' : 'missing'})`);
    for (const [kind, q] of queries) {
      await step(`search ${kind} "${q}"`, async () => {
        // The catalog follows the bus: retry briefly while it catches up.
        for (let i = 0; ; i++) {
          await page.fill('#search-q', q);
          await page.click('#search-form button');
          const hit = page.locator(`#search-results .hit[data-kind="${kind}"] a`).first();
          try {
            await hit.waitFor({ timeout: 2000 });
            break;
          } catch (e) {
            if (i > 15) throw new Error(`no ${kind} hit for ${q}`);
          }
        }
      });
    }
    const last = queries[queries.length - 1];
    await page.screenshot({ path: path.join(OUT, 'search.png'), fullPage: false });
    await step(`open the ${last[0]} hit at its time`, async () => {
      const link = page.locator(`#search-results .hit[data-kind="${last[0]}"] a`).first();
      const href = await link.getAttribute('href');
      const t = parseFloat(new URL(href, base).searchParams.get('t'));
      await link.click();
      await page.locator('body[data-loaded="true"]').waitFor({ timeout: 30000 });
      await page.waitForFunction((want) => Math.abs(document.getElementById('video').currentTime - want) < 0.6, t, { timeout: 30000 });
    });
    await page.screenshot({ path: path.join(OUT, 'asset-from-search.png'), fullPage: false });
    // Every panel shows text and time links, never a stringified element.
    const panels = await page.locator('main').innerText();
    assert.ok(!panels.includes('[object'), `a panel shows an object instead of its text: ${panels}`);
    assert.deepEqual(errors, [], 'no script errors on the pages');
  } finally {
    await browser.close();
    proc.kill('SIGTERM');
    fs.writeFileSync(path.join(OUT, 'timings.txt'), timings.map(([n, ms]) => `${n}\t${(ms / 1000).toFixed(1)} s`).join('\n') + '\n');
    fs.rmSync(work, { recursive: true, force: true });
  }
});

function fmt(seconds) {
  const ms = Math.round(seconds * 1000);
  const p = (n, w) => String(n).padStart(w, '0');
  return `${p(Math.floor(ms / 3600000), 2)}:${p(Math.floor(ms / 60000) % 60, 2)}:${p(Math.floor(ms / 1000) % 60, 2)}.${p(ms % 1000, 3)}`;
}
