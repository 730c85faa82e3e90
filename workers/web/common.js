// Shared helpers of the cuepoint pages: API calls, time formatting, the search box.
'use strict';

async function api(path, options) {
  const res = await fetch(path, Object.assign({ credentials: 'same-origin' }, options || {}));
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text }; }
  if (!res.ok) {
    const err = new Error((body && body.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

function fmtTime(seconds) {
  if (seconds == null || !isFinite(seconds)) return '–';
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60, r = ms % 1000;
  const p = (n, w) => String(n).padStart(w, '0');
  return `${p(h, 2)}:${p(m, 2)}:${p(s, 2)}.${p(r, 3)}`;
}

function parseTime(text) {
  const t = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(t)) return parseFloat(t);
  const m = /^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(t);
  if (!m) return NaN;
  return (parseInt(m[1] || '0', 10) * 3600) + parseInt(m[2], 10) * 60 + parseFloat(m[3]);
}

function fmtAge(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// The header's search box: results go in #search-results (on any page).
function setupSearch() {
  const form = document.getElementById('search-form');
  if (!form) return;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = document.getElementById('search-q').value;
    const out = document.getElementById('search-results');
    out.hidden = false;
    out.replaceChildren(el('h2', {}, `Search: ${q}`));
    try {
      const r = await api('/api/search?q=' + encodeURIComponent(q));
      if (!r.assets.length) out.append(el('p', { class: 'muted' }, 'Nothing found.'));
      for (const a of r.assets) {
        out.append(el('h3', {}, el('a', { href: `/assets/${a.asset_id}` }, a.name), ' ', el('span', { class: 'muted' }, a.asset_id)));
        for (const h of a.hits) {
          out.append(el('div', { class: 'hit', 'data-kind': h.kind },
            el('span', { class: 'kind' }, h.kind),
            el('a', { href: h.url, class: 'hit-link' }, fmtTime(h.start)), ' ', h.text));
        }
      }
    } catch (e) {
      out.append(el('p', { class: 'error' }, e.message));
    }
  });
}
