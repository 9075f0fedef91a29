// aistack control center: polls /api/stats, keeps the last minutes of
// each series in memory and draws them as small SVG plots.  No build
// step, no third-party code; the page's CSP allows only this origin.
'use strict';

const POLL_MS = 5000;
const KEEP_MS = 10 * 60 * 1000;
const TOKEN_KEY = 'aistack-proxy-token';
const SVG = 'http://www.w3.org/2000/svg';

const history = new Map();	// series key -> [[t, v], ...]
let last = null;		// the previous /api/stats answer
let breakers = [];		// with local retry deadlines
let timer = null;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + u[i];
}

function rate(v) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  return v < 10 ? v.toFixed(2) : v.toFixed(0);
}

function record(key, t, v) {
  let h = history.get(key);
  if (!h) { h = []; history.set(key, h); }
  h.push([t, v]);
  while (h.length > 0 && h[0][0] < t - KEEP_MS) h.shift();
}

// A polyline of the series over the kept window, scaled to its maximum.
function spark(key, label) {
  const h = history.get(key) || [];
  const w = 140, ht = 32;
  const s = document.createElementNS(SVG, 'svg');
  s.setAttribute('class', 'spark');
  s.setAttribute('viewBox', `0 0 ${w} ${ht}`);
  s.setAttribute('preserveAspectRatio', 'none');
  s.setAttribute('role', 'img');
  s.setAttribute('aria-label', label);
  const base = document.createElementNS(SVG, 'line');
  base.setAttribute('x1', 0); base.setAttribute('x2', w);
  base.setAttribute('y1', ht - 1); base.setAttribute('y2', ht - 1);
  s.append(base);
  if (h.length > 0) {
    const t1 = h[h.length - 1][0], t0 = t1 - KEEP_MS;
    const max = Math.max(1, ...h.map(p => p[1]));
    const pts = h.map(([t, v]) =>
      `${((t - t0) / KEEP_MS * w).toFixed(1)},${(ht - 1 - v / max * (ht - 3)).toFixed(1)}`);
    if (pts.length === 1) pts.unshift(`0,${pts[0].split(',')[1]}`);
    const pl = document.createElementNS(SVG, 'polyline');
    pl.setAttribute('points', pts.join(' '));
    s.append(pl);
  }
  return s;
}

// Per-second rate of a counter between two answers; a counter that went
// down was reset (a new run): its new value is the increase.
function perSecond(now, prev, dt) {
  if (prev === undefined || prev === null || now === null || dt <= 0) return null;
  return (now >= prev ? now - prev : now) / dt;
}

function renderBreakers() {
  const box = $('breakers');
  box.replaceChildren();
  if (breakers.length === 0) {
    box.append(el('p', { class: 'muted' }, 'No breaker yet.'));
    return;
  }
  const now = Date.now();
  for (const b of breakers) {
    const card = el('div', { class: `card breaker ${b.state}`, 'data-breaker': b.name,
      'data-state': b.state });
    card.append(el('h3', {}, b.name), el('span', { class: 'state' }, b.state.replace('_', '-')));
    if (b.state === 'open') {
      const left = Math.max(0, Math.ceil((b.deadline - now) / 1000));
      card.append(el('p', { class: 'retry' }, `retry in ${left} s`));
    }
    card.append(el('p', { class: 'muted' },
      `failures ${b.failures} · opened ${b.opened} times` +
      (b.last_failure ? ` · last failure ${b.last_failure}` : '')));
    box.append(card);
  }
}

function render(s) {
  const t = s.time * 1000;
  const dt = last ? s.time - last.time : 0;
  const prevStream = new Map((last ? last.streams : []).map(x => [x.name, x]));

  $('status').textContent = s.status;
  $('status').className = `badge ${s.status}`;
  $('updated').textContent = 'updated ' + new Date(t).toLocaleTimeString();
  $('error').textContent = '';

  breakers = s.breakers.map(b => Object.assign({}, b,
    { deadline: Date.now() + b.retry_in * 1000 }));
  renderBreakers();

  // streams, their backlog and their consumers' lag
  const box = $('streams');
  box.replaceChildren();
  let ingest = null, rejects = null;
  for (const st of s.streams) {
    record(`backlog:${st.name}`, t, st.backlog);
    const p = prevStream.get(st.name);
    if (st.ingest && p && p.ingest) {
      const a = perSecond(st.ingest.appended, p.ingest.appended, dt);
      const r = perSecond(st.ingest.rejected, p.ingest.rejected, dt);
      if (a !== null) ingest = (ingest || 0) + a;
      if (r !== null) rejects = (rejects || 0) + r;
    }
    const div = el('div', { class: 'stream', 'data-stream': st.name });
    div.append(el('h3', {}, st.name, st.paused ? el('span', { class: 'paused' }, ' · paused') : ''));
    const tb = el('table');
    tb.append(el('tr', {}, el('th', {}, 'backlog'), el('td', { class: 'num' }, bytes(st.backlog)),
      el('td', {}, spark(`backlog:${st.name}`, `backlog of ${st.name}`)),
      el('td', { class: 'num opt' }, 'head ' + bytes(st.head))));
    for (const c of st.consumers) {
      record(`lag:${st.name}:${c.name}`, t, c.lag);
      tb.append(el('tr', { class: 'consumer', 'data-consumer': c.name, 'data-lag': String(c.lag) },
        el('th', {}, c.name), el('td', { class: 'num lag' }, `lag ${bytes(c.lag)}`),
        el('td', {}, spark(`lag:${st.name}:${c.name}`, `lag of ${c.name}`)),
        el('td', { class: 'num opt' }, `${c.records} records · ${c.updated}`)));
    }
    if (st.consumers.length === 0)
      tb.append(el('tr', {}, el('td', { class: 'muted', colspan: '4' }, 'no consumer')));
    div.append(tb);
    box.append(div);
  }
  if (s.streams.length === 0) box.append(el('p', { class: 'muted' }, 'No stream yet.'));

  // rates
  const px = s.proxy, lp = last ? last.proxy : null;
  const rates = [
    ['ingest', 'ingested records/s', ingest],
    ['rejects', 'rejected records/s', rejects],
    ['requests', 'proxy requests/s', lp ? perSecond(px.requests, lp.requests, dt) : null],
    ['limited', '429 answers/s', lp ? perSecond(px.rate_limited, lp.rate_limited, dt) : null],
  ];
  let dups = 0, seen = 0;
  for (const d of s.dedup) { dups += d.duplicates; seen += d.seen; }
  rates.push(['dedup', 'duplicate rate %', seen > 0 ? 100 * dups / seen : null]);
  const rbox = $('rates');
  rbox.replaceChildren();
  for (const [key, label, v] of rates) {
    if (v !== null) record(`rate:${key}`, t, v);
    rbox.append(el('div', { class: 'card rate', 'data-rate': key }, el('h3', {}, label),
      el('div', { class: 'value' }, rate(v)), spark(`rate:${key}`, label)));
  }

  // dedup
  const dbox = $('dedup');
  dbox.replaceChildren();
  if (s.dedup.length === 0) dbox.append(el('p', { class: 'muted' }, 'No dedup statistics yet.'));
  else {
    const tb = el('table');
    tb.append(el('tr', {}, el('th', {}, 'state'), el('th', {}, 'seen'), el('th', {}, 'unique'),
      el('th', {}, 'duplicates'), el('th', {}, 'rate')));
    for (const d of s.dedup)
      tb.append(el('tr', {}, el('td', {}, d.name), el('td', { class: 'num' }, String(d.seen)),
        el('td', { class: 'num' }, String(d.unique)), el('td', { class: 'num' }, String(d.duplicates)),
        el('td', { class: 'num' }, (100 * d.duplicate_rate).toFixed(1) + ' %')));
    dbox.append(tb);
  }
  last = s;
}

function askToken(msg) {
  $('login').hidden = false;
  $('login-msg').textContent = msg;
  $('token').focus();
}

async function poll() {
  const headers = { Accept: 'application/json' };
  const tok = sessionStorage.getItem(TOKEN_KEY);
  if (tok) headers.Authorization = 'Bearer ' + tok;
  try {
    const r = await fetch('/api/stats', { headers, cache: 'no-store', credentials: 'omit' });
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken(tok ? 'That token was refused; enter it again.' :
        'This proxy needs its bearer token.');
      return;
    }
    if (r.status === 429) {
      $('error').textContent = `rate limited; retrying in ${r.headers.get('Retry-After') || '?'} s`;
      return;
    }
    if (!r.ok) throw new Error(`/api/stats: HTTP ${r.status}`);
    $('login').hidden = true;
    render(await r.json());
  } catch (e) {
    $('error').textContent = String(e.message || e);
  } finally {
    clearTimeout(timer);
    if ($('login').hidden) timer = setTimeout(poll, POLL_MS);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', ev => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    $('token').value = '';
    $('login').hidden = true;
    poll();
  });
  // the retry countdowns tick between polls
  setInterval(renderBreakers, 1000);
  poll();
});
