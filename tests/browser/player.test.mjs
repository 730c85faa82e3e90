// The delivered HLS ladder in a real player: hls.js (web/node_modules) in the system's Chromium
// (playwright-core), on what `cuepoint run` packaged from a generated programme.
//
//   CUEPOINT_BIN=target/debug/cuepoint node --test tests/browser/player.test.mjs
//
// Checks, for every break of the asset's VMAP and in every rendition of the ladder:
// - the media playlist starts a segment at the break, and that segment carries `#EXT-X-CUE-OUT`
//   as hls.js parses it (fragment tag list), within one frame of the VMAP's timeOffset;
// - hls.js reports an `#EXT-X-DATERANGE` with `SCTE35-OUT` at the same time, within one frame;
// - ffprobe finds a key frame there;
// and that playback starts. Results go to tests/browser/out/player.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { BIN, OUT, launchChromium, root } from './common.mjs';

const HLS_JS = path.join(root, 'web/node_modules/hls.js/dist/hls.min.js');
const FPS = 25;
const FRAME = 1 / FPS;

// 28 s at 960x540 (a ladder of 480p and 360p): three looks separated by black, silent gaps
// at 9-10.5 s and 19-20 s, a tone under the pictures.
function makeProgramme(dir) {
  const clip = path.join(dir, 'three-acts.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=s=960x540:r=${FPS}:d=9`,
    '-f', 'lavfi', '-i', `color=c=black:s=960x540:r=${FPS}:d=1.5`,
    '-f', 'lavfi', '-i', `smptebars=s=960x540:r=${FPS}:d=8.5`,
    '-f', 'lavfi', '-i', `color=c=black:s=960x540:r=${FPS}:d=1`,
    '-t', '8', '-f', 'lavfi', '-i', `mandelbrot=s=960x540:r=${FPS}`,
    '-filter_complex',
    '[0:v][1:v][2:v][3:v][4:v]concat=n=5:v=1:a=0,format=yuv420p[v];' +
      "aevalsrc='if(between(t,9,10.5)+between(t,19,20),0,0.3*sin(2*PI*330*t))':s=48000:d=28[a]",
    '-map', '[v]', '-map', '[a]', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '50', '-c:a', 'aac', clip]);
  return clip;
}

// `HH:MM:SS.mmm` → seconds.
function clock(s) {
  const [h, m, rest] = s.split(':');
  return Number(h) * 3600 + Number(m) * 60 + Number(rest);
}

function vmapBreaks(vmapFile) {
  const xml = fs.readFileSync(vmapFile, 'utf8');
  return [...xml.matchAll(/timeOffset="(\d\d:\d\d:\d\d(?:\.\d+)?)"/g)].map((m) => clock(m[1]));
}

function serve(dirs) {
  const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.js': 'text/javascript', '.html': 'text/html', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4' };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const [, mount, ...rest] = url.pathname.split('/');
    const base = dirs[mount];
    const file = base && path.resolve(base, ...rest.map(decodeURIComponent));
    if (!file || !file.startsWith(base) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Key frame times of one rendition, from its first picture.
function keyFrames(playlist) {
  const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time,key_frame',
    '-of', 'csv=p=0', playlist], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const frames = csv.trim().split('\n').map((l) => l.split(',')).map(([k, t]) => ({ key: k === '1', t: Number(t) }))
    .filter((f) => Number.isFinite(f.t));
  const t0 = Math.min(...frames.map((f) => f.t));
  return frames.filter((f) => f.key).map((f) => f.t - t0);
}

test('hls.js plays the ladder and reports a cue at every break, frame-exact, in every rendition', { timeout: 900000 }, async () => {
  fs.mkdirSync(OUT, { recursive: true });
  assert.ok(fs.existsSync(HLS_JS), `hls.js is missing: run web/install.sh (${HLS_JS})`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cuepoint-player-'));
  const clip = makeProgramme(work);
  // Breaks 10 s apart may both be taken in this short programme (the default spacing is 30 s).
  const env = { ...process.env, CUEPOINT_SCORING__DEFAULT__MIN_SPACING_SECONDS: '8' };
  const summaries = JSON.parse(execFileSync(BIN, ['run', '--json', '--data-dir', path.join(work, 'data'), clip],
    { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'], env }));
  const asset = summaries[0];
  assert.equal(asset.state, 'COMPLETE', JSON.stringify(asset));
  assert.ok(asset.hls && fs.existsSync(asset.hls), `no master playlist: ${asset.hls}`);
  const breaks = vmapBreaks(asset.vmap);
  assert.equal(breaks.length, 2, `a break in each gap (${asset.vmap})`);
  const hlsDir = path.dirname(asset.hls);
  const master = fs.readFileSync(asset.hls, 'utf8');
  const renditions = [...master.matchAll(/^([^#\s].*\.m3u8)\s*$/gm)].map((m) => m[1]);
  assert.ok(renditions.length >= 2, `a ladder for a 540p source:\n${master}`);

  // Key frames, by ffprobe, in every rendition.
  const probe = {};
  for (const r of renditions) {
    const keys = keyFrames(path.join(hlsDir, r));
    probe[r] = breaks.map((b) => {
      const nearest = keys.reduce((best, k) => (Math.abs(k - b) < Math.abs(best - b) ? k : best), Infinity);
      assert.ok(Math.abs(nearest - b) <= FRAME / 2, `${r}: no key frame at the break ${b} s (nearest ${nearest})`);
      return nearest;
    });
  }

  fs.writeFileSync(path.join(work, 'player.html'), '<!doctype html><title>player</title><video id="v" muted playsinline></video>');
  const server = await serve({ hls: hlsDir, vendor: path.dirname(HLS_JS), page: work });
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchChromium(['--autoplay-policy=no-user-gesture-required']);
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/page/player.html`);
    await page.addScriptTag({ url: `${base}/vendor/hls.min.js` });
    const seen = await page.evaluate(async ({ src, levels }) => {
      const Hls = window.Hls;
      if (!Hls.isSupported()) throw new Error('hls.js: MediaSource is not supported in this browser');
      const video = document.getElementById('v');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const problems = [];
      const videoStart = (f) => {
        const v = f.elementaryStreams && f.elementaryStreams.video;
        return v && Number.isFinite(v.startPTS) ? v.startPTS : null;
      };
      // One rendition at a time, held (no ABR switch), loaded to the end: hls.js has parsed each
      // of its segments and knows where its pictures start.
      async function rendition(i) {
        const hls = new Hls({ enableWorker: false, startLevel: i, maxBufferLength: 120, capLevelToPlayerSize: false });
        let details = null;
        hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { if (d.level === i) details = d.details; });
        hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) problems.push(`${d.type}: ${d.details}`); });
        hls.on(Hls.Events.MANIFEST_PARSED, () => { hls.currentLevel = i; });
        hls.loadSource(src);
        hls.attachMedia(video);
        const t0 = Date.now();
        while (Date.now() - t0 < 60000 && !(details && details.fragments.every((f) => videoStart(f) !== null))) await sleep(100);
        if (!details) throw new Error(`rendition ${i} did not load: ${problems.join('; ')}`);
        const frags = details.fragments;
        const parsed = frags.every((f) => videoStart(f) !== null);
        // Times from the programme's first picture, as the VMAP counts them (the player's
        // timeline starts where the first segment's audio or video starts).
        const origin = parsed ? videoStart(frags[0]) : frags[0].start;
        const at = (f) => ({ t: (parsed ? videoStart(f) : f.start) - origin, parsed });
        const cueOut = frags.filter((f) => (f.tagList || []).some((t) => t[0] === 'EXT-X-CUE-OUT')).map(at);
        // A date range is placed by its START-DATE against the playlist's PROGRAM-DATE-TIME.
        const pdt0 = Date.parse(frags[0].rawProgramDateTime);
        const dateRanges = Object.values(details.dateRanges || {}).filter((r) => r.attr && r.attr['SCTE35-OUT'])
          .map((r) => ({ t: (r.startDate.getTime() - pdt0) / 1000, parsed: true }));
        const out = {
          height: hls.levels[i].height,
          bitrate: hls.levels[i].bitrate,
          cueOut,
          dateRanges,
          boundaries: frags.map((f) => at(f).t),
          parsed,
        };
        return { hls, out };
      }
      const perLevel = [];
      let last = null;
      for (let i = 0; i < levels; i += 1) {
        if (last) last.destroy();
        const r = await rendition(i);
        perLevel.push(r.out);
        last = r.hls;
      }
      await video.play();
      const t0 = Date.now();
      while (video.currentTime < 1.0 && Date.now() - t0 < 30000) await sleep(100);
      const playedTo = video.currentTime;
      last.destroy();
      return { perLevel, playedTo, problems };
    }, { src: `${base}/hls/${path.basename(asset.hls)}`, levels: renditions.length });
    assert.deepEqual(errors, []);
    assert.deepEqual(seen.problems, [], 'hls.js reported no fatal error');
    assert.ok(seen.playedTo >= 1.0, `playback started (reached ${seen.playedTo} s)`);
    assert.equal(seen.perLevel.length, renditions.length, 'hls.js sees every rendition');
    const report = { breaks, renditions: [] };
    for (const level of seen.perLevel) {
      assert.equal(level.cueOut.length, breaks.length, `${level.height}p: one CUE-OUT per break ${JSON.stringify(level)}`);
      assert.equal(level.dateRanges.length, breaks.length, `${level.height}p: one SCTE35-OUT date range per break ${JSON.stringify(level)}`);
      breaks.forEach((b, i) => {
        const cue = level.cueOut[i];
        const range = level.dateRanges[i];
        assert.ok(Math.abs(cue.t - b) <= FRAME, `${level.height}p: CUE-OUT at ${cue.t} for the break at ${b}`);
        assert.ok(Math.abs(range.t - b) <= FRAME, `${level.height}p: DATERANGE at ${range.t} for the break at ${b}`);
        assert.ok(level.boundaries.some((t) => Math.abs(t - b) <= FRAME), `${level.height}p: a segment starts at ${b}`);
      });
      report.renditions.push({ height: level.height, bitrate: level.bitrate, cueOut: level.cueOut, dateRanges: level.dateRanges });
    }
    assert.ok(seen.perLevel.every((l) => l.parsed), 'hls.js parsed every segment of every rendition');
    report.keyFrames = probe;
    report.playedTo = seen.playedTo;
    fs.writeFileSync(path.join(OUT, 'player.json'), JSON.stringify(report, null, 2));
    console.log(`player: breaks ${breaks.map((b) => b.toFixed(3)).join(', ')} s`);
    for (const r of report.renditions) {
      const show = (xs) => xs.map((x) => x.t.toFixed(3)).join(', ');
      console.log(`  ${r.height}p: CUE-OUT ${show(r.cueOut)}; DATERANGE SCTE35-OUT ${show(r.dateRanges)}`);
    }
    for (const [r, keys] of Object.entries(probe)) console.log(`  ${r}: ffprobe key frames ${keys.map((t) => t.toFixed(3)).join(', ')}`);
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});
