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

// The increase of a cumulative counter between two answers.  The
// counters are the state's (kept under the stream's lock, so every
// producer's records count once, and across restarts); one that went down
// was reset (its stream or state made anew): its new value is the increase.
function increase(now, prev) {
  if (prev === undefined || prev === null || now === undefined || now === null) return null;
  return now >= prev ? now - prev : now;
}

function perSecond(now, prev, dt) {
  const d = increase(now, prev);
  return d === null || dt <= 0 ? null : d / dt;
}

function pct(v) {
  return v === null || v === undefined || !isFinite(v) ? '–' : (100 * v).toFixed(1) + ' %';
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
    const calls = b.calls || { success: 0, failure: 0, refused: 0 };
    const n = calls.success + calls.failure + (calls.ignored || 0) + calls.refused;
    card.append(el('p', { class: 'calls', 'data-calls': String(n) },
      n === 0 ? (b.configured ? 'configured, no call yet' : 'no call yet') :
        `${calls.success} ok · ${calls.failure} failed · ${calls.refused} refused`));
    card.append(el('p', { class: 'muted' },
      `failures ${b.failures} · opened ${b.opened} times` +
      (b.last_failure ? ` · last failure ${b.last_failure}` : '') +
      (b.last_success ? ` · last success ${b.last_success}` : '')));
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
  let ingest = null, rejects = null, appended = 0;
  for (const st of s.streams) {
    const div = el('div', { class: 'stream', 'data-stream': st.name });
    if (st.error) {
      div.append(el('h3', {}, st.name), el('p', { class: 'muted' }, st.error));
      box.append(div);
      continue;
    }
    record(`backlog:${st.name}`, t, st.backlog);
    const p = prevStream.get(st.name);
    if (st.ingest) {
      appended += st.ingest.appended;
      if (p && p.ingest) {
        const a = perSecond(st.ingest.appended, p.ingest.appended, dt);
        const r = perSecond(st.ingest.rejected, p.ingest.rejected, dt);
        if (a !== null) ingest = (ingest || 0) + a;
        if (r !== null) rejects = (rejects || 0) + r;
      }
    }
    // paused: a writer waits for this backlog now (its lock is live)
    div.setAttribute('data-paused', String(st.paused));
    div.append(el('h3', {}, st.name, st.paused ? el('span', { class: 'paused' }, ' · paused') : ''));
    const tb = el('table');
    tb.append(el('tr', {}, el('th', {}, 'backlog'), el('td', { class: 'num' }, bytes(st.backlog)),
      el('td', {}, spark(`backlog:${st.name}`, `backlog of ${st.name}`)),
      el('td', { class: 'num opt' }, 'head ' + bytes(st.head) +
        (st.max_backlog ? ` · limit ${bytes(st.max_backlog)}` : ''))));
    if (st.disk) {
      const segs = st.segments ? st.segments.plain + st.segments.gz : 0;
      record(`disk:${st.name}`, t, st.disk.total);
      tb.append(el('tr', { class: 'disk', 'data-disk': String(st.disk.total) },
        el('th', {}, 'disk'), el('td', { class: 'num' }, bytes(st.disk.total)),
        el('td', {}, spark(`disk:${st.name}`, `disk usage of ${st.name}`)),
        el('td', { class: 'num opt' }, `${segs} segment${segs === 1 ? '' : 's'} · ${bytes(st.disk.gz)} compressed`)));
    }
    if (st.ingest)
      tb.append(el('tr', { class: 'ingested', 'data-appended': String(st.ingest.appended) },
        el('th', {}, 'ingested'), el('td', { class: 'num' }, `${st.ingest.appended} records`),
        el('td', { class: 'num opt', colspan: '2' },
          `${st.ingest.rejected} rejected · ${bytes(st.ingest.bytes)}`)));
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
    ['ingest', 'ingested records/s', ingest, appended],
    ['rejects', 'rejected records/s', rejects],
    ['requests', 'proxy requests/s', lp ? perSecond(px.requests, lp.requests, dt) : null],
    ['limited', '429 answers/s', lp ? perSecond(px.rate_limited, lp.rate_limited, dt) : null],
  ];
  // the duplicate rate between two answers, from the states' counters
  const prevDedup = new Map((last ? last.dedup : []).map(x => [`${x.kind}:${x.name}`, x]));
  let dd = null, ds = null;
  for (const d of s.dedup) {
    const p = prevDedup.get(`${d.kind}:${d.name}`);
    const a = p ? increase(d.duplicates, p.duplicates) : null;
    const b = p ? increase(d.seen, p.seen) : null;
    if (a !== null && b !== null) { dd = (dd || 0) + a; ds = (ds || 0) + b; }
  }
  rates.push(['dedup', 'duplicate rate %', ds ? 100 * dd / ds : null]);
  const rbox = $('rates');
  rbox.replaceChildren();
  for (const [key, label, v, total] of rates) {
    if (v !== null) record(`rate:${key}`, t, v);
    const card = el('div', { class: 'card rate', 'data-rate': key }, el('h3', {}, label),
      el('div', { class: 'value' }, rate(v)), spark(`rate:${key}`, label));
    if (total !== undefined) {
      card.setAttribute('data-total', String(total));
      card.append(el('p', { class: 'muted' }, `${total} in all`));
    }
    rbox.append(card);
  }

  // dedup
  const dbox = $('dedup');
  dbox.replaceChildren();
  if (s.dedup.length === 0) dbox.append(el('p', { class: 'muted' }, 'No dedup statistics yet.'));
  else {
    // every record the state ever saw, beside what its last run did
    const tb = el('table');
    tb.append(el('tr', {}, el('th', {}, 'state'), el('th', {}, 'seen'), el('th', {}, 'unique'),
      el('th', {}, 'duplicates'), el('th', {}, 'rate, all runs'), el('th', {}, 'last run')));
    for (const d of s.dedup) {
      const lr = d.last_run;
      tb.append(el('tr', { 'data-dedup': d.name, 'data-kind': d.kind },
        el('td', {}, d.name + (d.kind === 'index' ? ' (index)' : '')),
        el('td', { class: 'num' }, d.seen === null ? '–' : String(d.seen)),
        el('td', { class: 'num' }, d.unique === null ? '–' : String(d.unique)),
        el('td', { class: 'num' }, d.duplicates === null ? '–' : String(d.duplicates)),
        el('td', { class: 'num rate-all' }, pct(d.duplicate_rate)),
        el('td', { class: 'num rate-last' }, lr ?
          `${pct(lr.duplicate_rate)} of ${lr.seen}` : '–')));
    }
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
