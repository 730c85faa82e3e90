// The asset page: HLS player, timeline with click-to-seek, break editing, panels.
'use strict';

const assetId = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const video = document.getElementById('video');
let detail = null;     // GET /api/assets/{id}
let breaksView = null; // GET /api/assets/{id}/breaks
let timeline = null;   // GET /api/assets/{id}/timeline
let draft = [];        // [{timestamp, from}] being edited
let playhead = null;

function seek(t, play) {
  if (!isFinite(t)) return;
  video.currentTime = Math.max(0, t);
  if (play) video.play().catch(() => {});
}

function tLink(seconds) {
  return el('span', { class: 't', onclick: () => seek(seconds, true), title: 'play from here' }, fmtTime(seconds));
}

// ---- player ----
function setupPlayer() {
  const notice = document.getElementById('player-notice');
  const src = detail.results.hls;
  if (!src) {
    notice.replaceChildren(el('div', { class: 'notice' }, detail.asset.state === 'FAILED' ? 'No HLS rendition: the asset FAILED.' : `No HLS rendition yet (asset is ${detail.asset.state}).`));
    return;
  }
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) notice.replaceChildren(el('div', { class: 'notice error' }, `Playback error: ${data.type} ${data.details}`));
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
  } else if (window.CUEPOINT_VENDOR_MISSING) {
    notice.replaceChildren(el('div', { class: 'notice error', id: 'hls-missing' },
      'hls.js is not installed on this server: run web/install.sh (or start cuepoint serve with --web-vendor DIR), then reload.'));
  } else {
    notice.replaceChildren(el('div', { class: 'notice error' }, 'This browser cannot play HLS.'));
  }
  const t = parseFloat(new URLSearchParams(location.search).get('t'));
  if (isFinite(t)) {
    const go = () => { seek(t, false); };
    if (video.readyState >= 1) go(); else video.addEventListener('loadedmetadata', go, { once: true });
  }
  video.addEventListener('timeupdate', movePlayhead);
}

// ---- timeline ----
const W = 1200, LEFT = 100, RIGHT = 10, TRACK_H = 22, LANE_H = 18;
function x(t) { const d = timeline.duration || 1; return LEFT + (Math.min(Math.max(t, 0), d) / d) * (W - LEFT - RIGHT); }

function svgEl(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function drawTimeline() {
  const box = document.getElementById('timeline');
  if (!timeline || !timeline.duration) { box.replaceChildren(el('p', { class: 'muted' }, 'No timeline yet.')); return; }
  const lanes = ['picture', 'shots', 'speech', 'slots', 'breaks'];
  const top = 6 + timeline.tracks.length * TRACK_H;
  const H = top + lanes.length * LANE_H + 22;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'timeline', id: 'timeline-svg' });
  timeline.tracks.forEach((tr, i) => {
    const y0 = 6 + i * TRACK_H, base = y0 + TRACK_H - 3;
    const y = (l) => base - ((Math.max(l, -70) + 70) / 70) * (TRACK_H - 5);
    let d = `M${x(0)},${base}`;
    for (const [t, l] of tr.points) d += ` L${x(t).toFixed(1)},${y(l).toFixed(1)}`;
    d += ` L${x(tr.points.length ? tr.points[tr.points.length - 1][0] : 0)},${base} Z`;
    svg.append(svgEl('path', { d, fill: tr.active ? '#2b7bb9' : '#bbb', 'fill-opacity': 0.6 }));
    const label = svgEl('text', { x: LEFT - 6, y: base - 4, 'text-anchor': 'end', 'font-size': 11 });
    label.textContent = `track ${tr.track}${tr.active ? '' : ' (silent)'}`;
    svg.append(label);
  });
  const laneY = (n) => top + n * LANE_H;
  lanes.forEach((name, n) => {
    const t = svgEl('text', { x: LEFT - 6, y: laneY(n) + 13, 'text-anchor': 'end', 'font-size': 11 });
    t.textContent = name;
    svg.append(t, svgEl('line', { x1: LEFT, x2: W - RIGHT, y1: laneY(n) + LANE_H, y2: laneY(n) + LANE_H, stroke: '#eee' }));
  });
  const span = (s, lane, fill, cls) => svg.append(svgEl('rect', { x: x(s.start), y: laneY(lane) + 3, width: Math.max(1.5, x(s.end) - x(s.start)), height: LANE_H - 6, fill, class: cls || '' }));
  timeline.black.forEach((s) => span(s, 0, '#222', 'black'));
  timeline.credits.forEach((s) => span(s, 0, '#a05fb0', 'credits'));
  timeline.shots.forEach((t) => svg.append(svgEl('line', { x1: x(t), x2: x(t), y1: laneY(1) + 3, y2: laneY(1) + LANE_H - 3, stroke: '#888' })));
  timeline.speech.forEach((s) => span(s, 2, '#3c9a5f', 'speech'));
  timeline.slots.forEach((s) => {
    const h = Math.max(2, s.score * (LANE_H - 4));
    svg.append(svgEl('rect', { x: x(s.timestamp) - 1.5, y: laneY(3) + LANE_H - 2 - h, width: 3, height: h, fill: '#e8a33d' }));
  });
  for (const b of draft) {
    const bx = x(b.timestamp);
    svg.append(svgEl('path', { d: `M${bx - 6},${laneY(4) + 2} L${bx + 6},${laneY(4) + 2} L${bx},${laneY(4) + LANE_H - 2} Z`, fill: '#d0342c', class: 'break-mark' }));
    svg.append(svgEl('line', { x1: bx, x2: bx, y1: 0, y2: laneY(4), stroke: '#d0342c', 'stroke-dasharray': '3 3', 'stroke-opacity': 0.6 }));
  }
  const d = timeline.duration;
  const step = [1, 5, 10, 30, 60, 300, 600, 1800, 3600].find((s) => d / s <= 12) || 3600;
  for (let t = 0; t <= d; t += step) {
    const anchor = t === 0 ? 'start' : (t + step > d ? 'end' : 'middle');
    const lbl = svgEl('text', { x: x(t), y: H - 6, 'text-anchor': anchor, 'font-size': 10, fill: '#6b7785' });
    lbl.textContent = fmtTime(t).replace(/\.000$/, '');
    svg.append(lbl);
  }
  playhead = svgEl('line', { x1: x(0), x2: x(0), y1: 0, y2: H - 18, stroke: '#000', 'stroke-width': 1.5, id: 'playhead' });
  svg.append(playhead);
  svg.addEventListener('click', (ev) => {
    const r = svg.getBoundingClientRect();
    const px = (ev.clientX - r.left) * (W / r.width);
    if (px < LEFT) return;
    seek(((px - LEFT) / (W - LEFT - RIGHT)) * timeline.duration, false);
  });
  box.replaceChildren(svg);
  movePlayhead();
}

function movePlayhead() {
  if (!playhead || !timeline) return;
  const px = x(video.currentTime || 0);
  playhead.setAttribute('x1', px);
  playhead.setAttribute('x2', px);
}

// ---- breaks ----
function sameTimes(a, b) {
  return a.length === b.length && a.every((x, i) => Math.abs(x.timestamp - b[i].timestamp) < 0.0005);
}

function markDirty() {
  const dirty = !sameTimes(draft, breaksView.breaks);
  document.getElementById('dirty').textContent = dirty ? 'unsaved changes' : '';
}

function nearbySlots(t) {
  return breaksView.slots.filter((s) => Math.abs(s.timestamp - t) <= 30 && Math.abs(s.timestamp - t) > 0.0005)
    .sort((a, b) => Math.abs(a.timestamp - t) - Math.abs(b.timestamp - t)).slice(0, 6);
}

function renderBreaks() {
  const tbody = document.querySelector('#breaks tbody');
  const notice = document.getElementById('breaks-notice');
  notice.replaceChildren();
  if (!breaksView.editable) notice.append(el('div', { class: 'notice', id: 'edit-refused' }, breaksView.refused));
  document.getElementById('version').textContent = `VMAP version ${breaksView.version}`;
  const vmapLink = document.getElementById('vmap-link');
  vmapLink.href = breaksView.vmap_url;
  vmapLink.hidden = breaksView.state !== 'COMPLETE';
  for (const id of ['save', 'accept', 'revert', 'add', 'add-now']) document.getElementById(id).disabled = !breaksView.editable;
  draft.sort((a, b) => a.timestamp - b.timestamp);
  tbody.replaceChildren(...draft.map((b, i) => {
    const saved = breaksView.breaks.find((s) => Math.abs(s.timestamp - b.timestamp) < 0.0005);
    const slot = breaksView.slots.find((s) => Math.abs(s.timestamp - b.timestamp) <= 0.5);
    const score = saved ? saved.score : (slot ? slot.score : null);
    const reasons = saved ? saved.reasons : (slot ? slot.reasons : ['Editor']);
    const moveBox = el('span', { class: 'move', hidden: true });
    const input = el('input', { size: 12, value: fmtTime(b.timestamp), class: 'move-time' });
    const choices = el('select', { class: 'move-slot' }, el('option', { value: '' }, 'nearby slot…'),
      nearbySlots(b.timestamp).map((s) => el('option', { value: s.timestamp }, `${fmtTime(s.timestamp)} (${s.score.toFixed(2)} ${s.reasons.join('+')})`)));
    choices.addEventListener('change', () => { if (choices.value) input.value = fmtTime(parseFloat(choices.value)); });
    const apply = () => {
      const t = parseTime(input.value);
      if (!isFinite(t)) { input.classList.add('error'); return; }
      draft[i] = { timestamp: Math.round(t * 1000) / 1000, from: b.from != null ? b.from : b.timestamp };
      refreshDraft();
    };
    moveBox.append(input, choices, el('button', { class: 'move-apply', onclick: apply }, 'OK'));
    return el('tr', { class: 'break-row', 'data-t': b.timestamp },
      el('td', {}, tLink(b.timestamp), b.from != null && Math.abs(b.from - b.timestamp) > 0.0005 ? el('div', { class: 'muted' }, `moved from ${fmtTime(b.from)}`) : null),
      el('td', {}, score != null ? score.toFixed(3) : '–'),
      el('td', {}, reasons.join(', ')),
      el('td', {}, saved && saved.ad_url ? el('a', { href: saved.ad_url, title: saved.ad_url }, saved.ad_url.split('/').pop()) : el('span', { class: 'muted' }, saved ? '–' : 'on save')),
      el('td', {},
        el('button', { class: 'play', onclick: () => seek(Math.max(0, b.timestamp - 2), true), title: 'play from 2 s before the break' }, 'Play'), ' ',
        breaksView.editable ? el('button', { class: 'move-btn', onclick: () => { moveBox.hidden = !moveBox.hidden; } }, 'Move') : null, ' ',
        breaksView.editable ? el('button', { class: 'delete', onclick: () => { draft.splice(i, 1); refreshDraft(); } }, 'Delete') : null,
        moveBox));
  }));
  if (!draft.length) tbody.append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No breaks.')));
  const hist = document.getElementById('history');
  hist.replaceChildren(el('li', {}, 'version 1: as scored by the pipeline'),
    ...breaksView.history.map((h) => el('li', { class: 'history-entry' },
      `version ${h.version}: ${h.summary} — ${h.by}, ${new Date(h.at_ms).toLocaleString()} `, el('a', { href: h.vmap_url }, 'VMAP'))));
  markDirty();
}

function refreshDraft() {
  renderBreaks();
  drawTimeline();
}

function addBreak(t) {
  if (!isFinite(t)) { document.getElementById('add-time').classList.add('error'); return; }
  draft.push({ timestamp: Math.round(t * 1000) / 1000 });
  refreshDraft();
}

async function save(accepting) {
  const notice = document.getElementById('breaks-notice');
  const body = {
    version: breaksView.version,
    editor: document.getElementById('editor').value || null,
    breaks: (accepting ? breaksView.breaks.map((b) => ({ timestamp: b.timestamp })) : draft).map((b) => (b.from != null ? { timestamp: b.timestamp, from: b.from } : { timestamp: b.timestamp })),
  };
  try {
    breaksView = await api(`/api/assets/${assetId}/breaks`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    draft = breaksView.breaks.map((b) => ({ timestamp: b.timestamp }));
    timeline.breaks = breaksView.breaks;
    refreshDraft();
    const last = breaksView.history[breaksView.history.length - 1];
    notice.append(el('div', { class: 'notice ok', id: 'saved' }, `Saved as VMAP version ${breaksView.version}: ${last ? last.summary : ''}`));
  } catch (e) {
    notice.replaceChildren(el('div', { class: 'notice error', id: 'save-error' }, `Not saved: ${e.message}`));
  }
}

document.getElementById('add').addEventListener('click', () => addBreak(parseTime(document.getElementById('add-time').value)));
document.getElementById('add-now').addEventListener('click', () => addBreak(video.currentTime || 0));
document.getElementById('save').addEventListener('click', () => save(false));
document.getElementById('accept').addEventListener('click', () => save(true));
document.getElementById('revert').addEventListener('click', () => { draft = breaksView.breaks.map((b) => ({ timestamp: b.timestamp })); refreshDraft(); });

// ---- panels ----
function panel(id, status, items, render) {
  const box = document.getElementById(id);
  const h = box.querySelector('h2');
  box.replaceChildren(h);
  if (status.status !== 'COMPLETE') {
    const text = status.status === 'MISSING' ? (status.message || 'No results.') : `${status.status}: ${status.message || ''}`;
    box.append(el('div', { class: status.status === 'FAILED' ? 'notice error' : 'notice', 'data-status': status.status }, text));
  }
  if (!items.length) {
    if (status.status === 'COMPLETE') box.append(el('p', { class: 'muted' }, 'Nothing found.'));
    return;
  }
  box.append(render(items));
}

function occurrenceTable(items) {
  return el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Conf.'), el('th', {}, 'Seen at'))),
    el('tbody', {}, items.slice(0, 200).map((o) => el('tr', {},
      el('td', {}, o.name, o.parent ? el('span', { class: 'muted' }, ` (${o.parent})`) : null),
      el('td', {}, o.confidence.toFixed(1)),
      el('td', {}, o.times_ms.slice(0, 8).map((ms) => [tLink(ms / 1000), ' ']), o.count > 8 ? el('span', { class: 'muted' }, `+${o.count - 8}`) : null)))));
}

function renderPanels(ins) {
  panel('panel-labels', ins.labels, ins.label_items, occurrenceTable);
  panel('panel-celebrities', ins.celebrities, ins.celebrity_items, occurrenceTable);
  panel('panel-moderation', ins.moderation, ins.moderation_items, occurrenceTable);
  panel('panel-faces', ins.faces, ins.face_items, (items) => el('div', {},
    el('p', {}, `${items.length} face detection(s)`),
    el('p', {}, items.slice(0, 60).map((f) => [tLink(f.timestamp_ms / 1000), ' ']))));
  panel('panel-transcript', ins.transcript, ins.transcript_items, (items) => el('div', {},
    items.map((p) => el('p', { class: 'phrase' }, tLink(p.start), ' ', p.text))));
}

// ---- load ----
async function load() {
  try {
    detail = await api(`/api/assets/${encodeURIComponent(assetId)}`);
  } catch (e) {
    document.getElementById('load-error').textContent = e.message;
    return;
  }
  const a = detail.asset;
  document.title = `cuepoint: ${a.name}`;
  document.getElementById('title').textContent = a.name;
  const st = document.getElementById('state');
  st.textContent = a.state;
  st.className = `state ${a.state}`;
  document.getElementById('facts').textContent = [
    a.duration ? `duration ${fmtTime(a.duration)}` : null,
    a.layout ? `layout ${a.layout}` : null,
    a.audio_tracks != null ? `${a.audio_tracks} audio track(s), silent: ${a.silent_tracks.join(', ') || 'none'}` : null,
    a.failure ? `FAILED at ${a.failed_stage}: ${a.failure}` : null,
  ].filter(Boolean).join(' · ');
  setupPlayer();
  const [bv, tl, ins] = await Promise.all([
    api(`/api/assets/${assetId}/breaks`),
    api(`/api/assets/${assetId}/timeline`).catch(() => null),
    api(`/api/assets/${assetId}/insights`).catch(() => null),
  ]);
  breaksView = bv;
  timeline = tl || { duration: 0, tracks: [], black: [], credits: [], shots: [], speech: [], slots: [], breaks: [] };
  draft = breaksView.breaks.map((b) => ({ timestamp: b.timestamp }));
  refreshDraft();
  if (ins) renderPanels(ins);
  document.body.dataset.loaded = 'true';
  if (a.state !== 'COMPLETE' && a.state !== 'FAILED') setTimeout(() => location.reload(), 3000);
}

setupSearch();
load();
