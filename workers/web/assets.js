// The assets page: the list (polled while anything is in the pipeline) and the upload.
'use strict';

let timer = null;

async function refresh() {
  const body = document.querySelector('#assets tbody');
  const errBox = document.getElementById('assets-error');
  try {
    const assets = await api('/api/assets');
    errBox.textContent = '';
    body.replaceChildren(...assets.map((a) => el('tr', { 'data-id': a.id, 'data-state': a.state },
      el('td', {}, el('a', { href: `/assets/${a.id}` }, a.name), el('br'), el('span', { class: 'muted' }, a.id)),
      el('td', {}, el('span', { class: `state ${a.state}` }, a.state)),
      el('td', {}, a.duration ? fmtTime(a.duration) : '–'),
      el('td', {}, a.layout || '–', a.audio_tracks != null ? ` (${a.audio_tracks} track${a.audio_tracks === 1 ? '' : 's'})` : ''),
      el('td', {}, a.silent_tracks.length ? a.silent_tracks.join(', ') : (a.audio_tracks != null ? 'none' : '–')),
      el('td', {}, a.state === 'COMPLETE' ? String(a.breaks) + (a.vmap_version > 1 ? ` (edited, v${a.vmap_version})` : '') : '–'),
      el('td', {}, fmtAge(a.created_at_ms)),
      el('td', { class: 'error' }, a.failure ? `${a.failed_stage}: ${a.failure}` : ''))));
    if (!assets.length) body.append(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'No assets yet: upload a file.')));
    document.getElementById('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
    const busy = assets.some((a) => a.state !== 'COMPLETE' && a.state !== 'FAILED');
    clearTimeout(timer);
    timer = setTimeout(refresh, busy ? 1000 : 5000);
  } catch (e) {
    errBox.textContent = e.message;
    clearTimeout(timer);
    timer = setTimeout(refresh, 5000);
  }
}

async function upload(file) {
  const status = document.getElementById('upload-status');
  status.replaceChildren(el('div', { class: 'notice' }, `Uploading ${file.name} (${(file.size / 1048576).toFixed(1)} MiB)…`));
  try {
    const r = await api('/api/uploads?name=' + encodeURIComponent(file.name), {
      method: 'POST',
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
      body: file,
    });
    status.replaceChildren(el('div', { class: 'notice ok', id: 'upload-ok', 'data-asset': r.asset_id },
      'Uploaded: the pipeline started for ', el('a', { href: r.url }, r.asset_id), '.'));
    refresh();
  } catch (e) {
    status.replaceChildren(el('div', { class: 'notice error', id: 'upload-error' }, `Upload refused: ${e.message}`));
  }
}

document.getElementById('upload').addEventListener('click', () => {
  const f = document.getElementById('file').files[0];
  if (f) upload(f);
});
const drop = document.getElementById('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
});
setupSearch();
refresh();
