// The review gallery: every clip as a card, thresholds re-judged in the browser.
//
// judgeOne() is curation/rules.py judge() for the part a threshold can change: the data
// marks each clip's verdict as fixed (unreadable, a failed score, a byte-identical copy, a
// split source, not curated) or re-judgeable, and gives per clip the thresholds that do not
// follow the shared controls (per-source overrides, tiny-profile skipping, scorers off:
// review/thresholds.py pinned_keys). Reasons are spelled as judge spells them (fmtG is
// Python's "{:g}"), so the funnel counts rules exactly as `curation-assets run` does.
(function () {
  'use strict';
  const boot = JSON.parse(document.getElementById('boot').textContent);
  const STATIC = boot.mode === 'static';
  const $ = (id) => document.getElementById(id);
  const ROW_H = 306, HEAD_H = 34, CARD_W = 230, BUFFER_PX = 600;
  const STATUS_ORDER = ['kept', 'rejected', 'failed', 'split', 'not curated'];

  let D = null, N = 0;
  const C = {};                 // the clips' columns, decoded
  let controls = [];            // from the data: the recipe's shared thresholds
  const shared = {};            // the controls' current values
  let judged = null;            // {status: [], reasons: []} under `shared`
  let view = { rows: [], offsets: [], total: 0, shown: 0 };
  const state = { group: 'verdict', sort: '', desc: false, statuses: new Set(STATUS_ORDER), onlyFlipped: false,
                  filterCol: '', filterMin: null, filterMax: null, search: '', shard: '' };
  let byId = new Map();
  // how long the page's own work took (ms): for benchmarks/gallery_scale.py and the console
  const timings = window.reviewTimings = {};
  let details = null;           // static copy: every clip's detail

  // ------------------------------------------------------------------ formatting
  function fmtG(x) {
    // Python's format(x, "g"): 6 significant digits, trailing zeros dropped, exponent
    // when it is < -4 or >= 6
    if (x === 0) return '0';
    if (!isFinite(x)) return x > 0 ? 'inf' : (x < 0 ? '-inf' : 'nan');
    const [mant, expText] = x.toExponential(5).split('e');
    const exp = parseInt(expText, 10);
    if (exp < -4 || exp >= 6) {
      const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
      return m + 'e' + (exp < 0 ? '-' : '+') + String(Math.abs(exp)).padStart(2, '0');
    }
    let fixed = x.toFixed(Math.max(0, 5 - exp));
    if (fixed.includes('.')) fixed = fixed.replace(/0+$/, '').replace(/\.$/, '');
    return fixed;
  }
  function num(v, digits) {
    if (v === null || v === undefined) return '–';
    if (Number.isInteger(v)) return String(v);
    return Number(v).toPrecision(digits || 3).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  }
  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function base(p) { return p ? String(p).split('/').pop() : ''; }
  function media(key) {
    if (!key) return null;
    if (/^(\/|[a-z]+:)/i.test(key)) return null;   // absolute paths are outside the store
    return boot.media_base === null ? null : boot.media_base + key.split('/').map(encodeURIComponent).join('/');
  }

  // ------------------------------------------------------------------ the verdicts
  function effective(i, key) {
    const pins = C.pin[i] >= 0 ? D.pins[C.pin[i]] : null;
    if (pins && Object.prototype.hasOwnProperty.call(pins, key)) return pins[key];
    return shared[key];
  }
  function judgePlan(p) {
    // the bounds a clip of pin set p (-1: none) is judged with, resolved once per re-judge:
    // the per-clip loop then only compares numbers (100,000 clips re-judged in a few ms each)
    const pins = p >= 0 ? D.pins[p] : null;
    const eff = (key) => (pins && Object.prototype.hasOwnProperty.call(pins, key) ? pins[key] : shared[key]);
    const rules = [];
    for (const c of controls) {
      if (c.kind === 'bool') continue;
      const bound = eff(c.key);
      if (bound === null || bound === undefined || (c.op !== '<' && c.op !== '>')) continue;
      rules.push({ values: C.values[c.column] || [], below: c.op === '<', bound, reason: c.column + c.op + fmtG(bound) });
    }
    return { rules, requireCaption: !!eff('require_caption') };
  }
  function judgeOne(i, plan) {
    if (C.fixed[i]) return [C.status[i], C.reasons[i]];
    const reasons = [];
    const nd = C.near_duplicate_of[i];
    if (nd) reasons.push('near_duplicate_of:' + nd);
    for (const r of plan.rules) {
      const value = r.values[i];
      if (value === null || value === undefined) continue;
      if (r.below ? value < r.bound : value > r.bound) reasons.push(r.reason);
    }
    if (plan.requireCaption && !C.caption[i]) reasons.push('caption_missing');
    return [reasons.length ? 'rejected' : 'kept', reasons];
  }
  function judgeAll() {
    const status = new Array(N), reasons = new Array(N), plans = new Map();
    for (let i = 0; i < N; i++) {
      const p = C.pin[i];
      let plan = plans.get(p);
      if (plan === undefined) { plan = judgePlan(p); plans.set(p, plan); }
      const v = judgeOne(i, plan); status[i] = v[0]; reasons[i] = v[1];
    }
    return { status, reasons };
  }
  function ruleName(reason) {
    if (reason.startsWith('near_duplicate_of:')) return 'near_duplicate';
    if (reason.startsWith('duplicate_of:')) return 'duplicate';
    return reason;
  }
  function stageName(reason) {  // funnel.py _stage
    const at = reason.indexOf(': ');
    if (at < 0) return reason;
    const head = reason.slice(0, at), detail = reason.slice(at + 2);
    return head + ': ' + detail.split(':')[0].split('(')[0].trim();
  }
  function countFunnel(status, reasons) {
    const f = { in: N, kept: 0, rejected: 0, failed: 0, split: 0, 'not curated': 0, rules: new Map(), stages: new Map(),
                clips: 0 };
    for (let i = 0; i < N; i++) {
      const s = status[i];
      f[s] = (f[s] || 0) + 1;
      if (C.source_path[i]) f.clips += 1;
      if (s === 'rejected') for (const r of reasons[i]) { const k = ruleName(r); f.rules.set(k, (f.rules.get(k) || 0) + 1); }
      if (s === 'failed') { const k = stageName(reasons[i][0] || 'unknown'); f.stages.set(k, (f.stages.get(k) || 0) + 1); }
    }
    return f;
  }

  // ------------------------------------------------------------------ loading
  function decodeDict(d) {
    const out = new Array(d.codes.length);
    for (let i = 0; i < d.codes.length; i++) out[i] = d.codes[i] < 0 ? null : d.values[d.codes[i]];
    return out;
  }
  async function load(reload) {
    let data;
    if (STATIC) {
      data = JSON.parse(document.getElementById('gallery-data').textContent);
      const el = document.getElementById('gallery-detail');
      details = el ? JSON.parse(el.textContent) : {};
    } else {
      const resp = await fetch('api/gallery' + (reload ? '?reload=1' : ''));
      if (!resp.ok) throw new Error('the gallery data did not load: HTTP ' + resp.status + ' ' + (await resp.text()));
      data = await resp.json();
    }
    init(data);
  }
  let started = false;
  function init(data) {
    const t0 = performance.now();
    D = data; N = data.count;
    const k = data.clips;
    for (const name of ['video_id', 'path', 'caption', 'near_duplicate_of', 'preview', 'still', 'reasons', 'start_s',
                        'end_s', 'fixed', 'pin']) C[name] = k[name];
    for (const name of ['shard', 'status', 'caption_source', 'source_path', 'model_profile']) C[name] = decodeDict(k[name]);
    C.values = k.values;
    byId = new Map();
    for (let i = 0; i < N; i++) if (C.video_id[i] && !byId.has(C.video_id[i])) byId.set(C.video_id[i], i);
    controls = data.controls;
    for (const c of controls) shared[c.key] = c.value;
    $('where').textContent = (boot.title || '') + (STATIC ? ' (static copy of ' + data.generated_at + ')' : '');
    const r = data.recipe || {};
    $('recipe-line').textContent = 'recipe: ' + (r.path || 'defaults') + (r.hash ? ' (hash ' + r.hash + ')' : '') +
      (data.model_profile ? ' · model profile ' + data.model_profile : '') + ' · ' + N + ' clips';
    showProblems();
    buildControls();
    buildToolbar();
    judged = judgeAll();
    const stale = [];
    for (let i = 0; i < N; i++) if (judged.status[i] !== C.status[i]) stale.push(i);
    if (stale.length) {
      D.problems.push({ kind: 'stale', message: stale.length + ' clips\' stored verdicts differ from what this ' +
        'recipe\'s thresholds give (e.g. ' + C.path[stale[0]] + '): curated_videos is stale for them; run ' +
        '`curation-assets run` to re-judge' });
      showProblems();
    }
    refresh();
    openFromHash();
    if (!started) {
      started = true;
      window.addEventListener('hashchange', openFromHash);
      $('reload').addEventListener('click', () => { document.body.dataset.ready = ''; load(true).catch(fail); });
      if (STATIC) $('reload').hidden = true;
    }
    timings.init_ms = performance.now() - t0;
    document.body.dataset.ready = '1';
  }
  function showProblems() {
    const box = $('problems');
    if (!D.problems.length) { box.hidden = true; return; }
    box.hidden = false;
    box.innerHTML = '<strong>What this page cannot show</strong><ul>' + D.problems.map((p) =>
      '<li data-kind="' + esc(p.kind) + '">' + esc(p.message) + '</li>').join('') + '</ul>';
  }

  // ------------------------------------------------------------------ thresholds
  function columnRange(col) {
    let lo = Infinity, hi = -Infinity;
    const v = C.values[col] || [];
    for (let i = 0; i < v.length; i++) { const x = v[i]; if (x !== null && x !== undefined) { if (x < lo) lo = x; if (x > hi) hi = x; } }
    return lo <= hi ? [lo, hi] : null;
  }
  function niceStep(span, kind) {
    if (kind === 'int') return 1;
    if (!(span > 0)) return 0.01;
    const raw = span / 200, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m < 2 ? 1 : m < 5 ? 2 : 5) * p;
  }
  function roundTo(x, step) {
    const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
    return Number((Math.round(x / step) * step).toFixed(digits));
  }
  function buildControls() {
    const box = $('controls');
    box.innerHTML = '';
    for (const c of controls) {
      const div = document.createElement('div');
      div.className = 'control';
      div.dataset.key = c.key;
      const pinned = pinnedCount(c.key);
      let note = D.off[c.key] ? 'not applied: ' + D.off[c.key] : '';
      if (!note && pinned.skipped) note = 'not applied to ' + pinned.skipped + ' clip(s)' +
        (c.noise_under_tiny ? ' (tiny random-weight scores: skipped)' : ' (skipped for their caption source or profile)');
      if (pinned.overridden) note += (note ? '; ' : '') + pinned.overridden + ' clip(s) use a per-source value';
      if (c.kind === 'bool') {
        div.innerHTML = '<div class="head"><span class="key">' + esc(c.key) + '</span></div>' +
          '<label class="inline"><input type="checkbox" data-role="bool"> ' + esc(c.description) + '</label>' +
          (note ? '<div class="note">' + esc(note) + '</div>' : '');
        const box2 = div.querySelector('input');
        box2.checked = !!shared[c.key];
        box2.addEventListener('change', () => setShared(c.key, box2.checked));
      } else {
        const range = columnRange(c.column) || [0, 1];
        let lo = Math.min(range[0], c.value ?? range[0], c.default ?? range[0]);
        let hi = Math.max(range[1], c.value ?? range[1], c.default ?? range[1]);
        if (lo === hi) { hi = lo + (c.kind === 'int' ? 10 : 1); }
        const step = niceStep(hi - lo, c.kind);
        div.innerHTML = '<div class="head"><span class="key">' + esc(c.key) + '</span><span class="rule">reject if ' +
          esc(c.column) + ' ' + esc(c.op) + ' x</span></div>' +
          '<div class="row"><input type="range" data-role="range" min="' + lo + '" max="' + hi + '" step="' + step + '">' +
          '<input type="number" data-role="number" step="any" title="empty: not checked">' +
          '<label class="inline" title="not checked"><input type="checkbox" data-role="off">off</label></div>' +
          '<div class="hint">' + esc(c.description) + '</div>' + (note ? '<div class="note">' + esc(note) + '</div>' : '');
        const slider = div.querySelector('[data-role=range]'), box2 = div.querySelector('[data-role=number]'),
          off = div.querySelector('[data-role=off]');
        const show = () => {
          const v = shared[c.key];
          off.checked = v === null; slider.disabled = v === null;
          if (v !== null) slider.value = v;
          if (document.activeElement !== box2) box2.value = v === null ? '' : v;
          div.classList.toggle('changed', v !== c.value);
        };
        div._show = show;
        slider.addEventListener('input', () => setShared(c.key, c.kind === 'int' ? Math.round(+slider.value) : roundTo(+slider.value, step)));
        box2.addEventListener('change', () => {
          const text = box2.value.trim();
          if (text === '') return setShared(c.key, null);
          const v = Number(text);
          if (!isFinite(v)) { box2.value = shared[c.key] ?? ''; return; }
          setShared(c.key, c.kind === 'int' ? Math.round(v) : v);
        });
        off.addEventListener('change', () => setShared(c.key, off.checked ? null : (c.value ?? c.default ?? +slider.value)));
        show();
      }
      box.appendChild(div);
    }
  }
  function pinnedCount(key) {
    let skipped = 0, overridden = 0;
    for (let i = 0; i < N; i++) {
      if (C.fixed[i] || C.pin[i] < 0) continue;
      const pins = D.pins[C.pin[i]];
      if (Object.prototype.hasOwnProperty.call(pins, key)) { if (pins[key] === null) skipped++; else overridden++; }
    }
    return { skipped, overridden };
  }
  let pending = false;
  function setShared(key, value) {
    shared[key] = value;
    for (const div of $('controls').children) if (div._show) div._show();
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const t0 = performance.now();
      judged = judgeAll();
      timings.judge_ms = performance.now() - t0;
      refresh();
      timings.threshold_ms = performance.now() - t0;
    });
  }

  // ------------------------------------------------------------------ funnel
  function renderFunnel() {
    const before = countFunnel(C.status, C.reasons), now = countFunnel(judged.status, judged.reasons);
    const rows = [['videos in', 'in'], ['kept', 'kept'], ['rejected', 'rejected']];
    const rules = new Set([...before.rules.keys(), ...now.rules.keys()]);
    const line = (label, key, a, b, cls) => {
      const d = b - a;
      return '<tr class="' + (cls || '') + '" data-count="' + esc(key) + '" data-value="' + b + '"><td>' + esc(label) +
        '</td><td class="n">' + a + '</td><td class="n">' + (d ? '<span class="delta">' + b +
        ' (' + (d > 0 ? '+' : '') + d + ')</span>' : b) + '</td></tr>';
    };
    let html = '<tr><td></td><td class="n">stored</td><td class="n">now</td></tr>';
    for (const [label, key] of rows) html += line(label, key, before[key], now[key]);
    const sortedRules = [...rules].sort((a, b) => (now.rules.get(b) || 0) - (now.rules.get(a) || 0));
    for (const r of sortedRules) html += line(r, 'rule:' + r, before.rules.get(r) || 0, now.rules.get(r) || 0, 'rule');
    html += line('failed', 'failed', before.failed, now.failed);
    for (const [s, n] of now.stages) html += line(s, 'stage:' + s, n, n, 'rule');
    if (now.split) html += line('split (long sources; their ' + now.clips + ' clips judged above)', 'split', before.split, now.split);
    if (now['not curated']) html += line('not curated', 'not curated', before['not curated'], now['not curated']);
    $('funnel').innerHTML = html;
    let toRejected = 0, toKept = 0;
    for (let i = 0; i < N; i++) {
      if (judged.status[i] === C.status[i]) continue;
      if (judged.status[i] === 'rejected') toRejected++; else if (judged.status[i] === 'kept') toKept++;
    }
    $('flips').innerHTML = toRejected || toKept ? '<strong>' + (toRejected + toKept) + ' clips flip</strong>: ' +
      toRejected + ' kept &rarr; rejected, ' + toKept + ' rejected &rarr; kept' : 'no clip flips';
    $('flips').dataset.toRejected = toRejected; $('flips').dataset.toKept = toKept;
  }

  // ------------------------------------------------------------------ toolbar, view
  function buildToolbar() {
    // options from the data (every init: a reload may bring a new score); listeners once
    const sort = $('sort');
    const opts = [['', 'shard, path'], ['status', 'verdict'], ['path', 'file name']].concat(
      D.scores.map((s) => [s.column, s.column]));
    sort.innerHTML = opts.map(([v, l]) => '<option value="' + esc(v) + '">' + esc(l) + '</option>').join('');
    sort.value = state.sort;
    $('filter-col').innerHTML = '<option value="">score&hellip;</option>' + D.scores.map((s) =>
      '<option value="' + esc(s.column) + '">' + esc(s.column) + '</option>').join('');
    $('filter-col').value = state.filterCol;
    $('status-filter').innerHTML = STATUS_ORDER.map((s) => '<label><input type="checkbox" data-status="' + esc(s) +
      '"' + (state.statuses.has(s) ? ' checked' : '') + '>' + esc(s) + '</label>').join('');
    if (!started) wireToolbar();
  }
  function wireToolbar() {
    const sort = $('sort');
    $('status-filter').addEventListener('change', (e) => {
      const s = e.target.dataset.status;
      if (e.target.checked) state.statuses.add(s); else state.statuses.delete(s);
      rebuild();
    });
    $('group').addEventListener('change', () => { state.group = $('group').value; rebuild(); });
    sort.addEventListener('change', () => { state.sort = sort.value; rebuild(); });
    $('order').addEventListener('click', () => { state.desc = !state.desc; $('order').innerHTML = state.desc ? '&darr;' : '&uarr;'; rebuild(); });
    $('only-flipped').addEventListener('change', () => { state.onlyFlipped = $('only-flipped').checked; rebuild(); });
    const numOrNull = (el) => (el.value.trim() === '' ? null : Number(el.value));
    for (const id of ['filter-col', 'filter-min', 'filter-max']) $(id).addEventListener('change', () => {
      state.filterCol = $('filter-col').value; state.filterMin = numOrNull($('filter-min')); state.filterMax = numOrNull($('filter-max'));
      rebuild();
    });
    let timer = null;
    $('search').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { state.search = $('search').value.trim().toLowerCase(); rebuild(); }, 150); });
    $('reset').addEventListener('click', () => { for (const c of controls) shared[c.key] = c.value; buildControls(); setShared(controls[0].key, controls[0].value); });
    $('save').addEventListener('click', () => saveRecipe(true));
    $('show-yaml').addEventListener('click', () => saveRecipe(false));
    if (STATIC) $('save').hidden = true;
    $('grid').addEventListener('scroll', () => scheduleRender());
    window.addEventListener('resize', () => rebuild());
    $('grid').addEventListener('click', (e) => {
      const card = e.target.closest('.card');
      if (card) location.hash = (state.shard ? 'shard=' + encodeURIComponent(state.shard) + '&' : '') + 'clip=' +
        encodeURIComponent(card.dataset.id || '') + '&i=' + card.dataset.i;
    });
  }
  function refresh() { renderFunnel(); rebuild(); }
  function matches(i) {
    if (!state.statuses.has(judged.status[i])) return false;
    if (state.shard && C.shard[i] !== state.shard) return false;
    if (state.onlyFlipped && judged.status[i] === C.status[i]) return false;
    if (state.filterCol) {
      const v = C.values[state.filterCol][i];
      if (v === null || v === undefined) return false;
      if (state.filterMin !== null && v < state.filterMin) return false;
      if (state.filterMax !== null && v > state.filterMax) return false;
    }
    if (state.search) {
      const hay = ((C.path[i] || '') + ' ' + (C.caption[i] || '') + ' ' + (C.source_path[i] || '')).toLowerCase();
      if (!hay.includes(state.search)) return false;
    }
    return true;
  }
  function sortKey() {
    const s = state.sort;
    if (!s) return null;
    if (s === 'status') return (i) => STATUS_ORDER.indexOf(judged.status[i]);
    if (s === 'path') return (i) => base(C.path[i]);
    return (i) => C.values[s][i];
  }
  function groupsOf(i) {
    switch (state.group) {
      case 'verdict': return [judged.status[i]];
      case 'rule': return judged.status[i] === 'rejected' ? judged.reasons[i].map(ruleName) : [judged.status[i]];
      case 'source': return [C.source_path[i] || C.path[i]];
      case 'caption_source': return [C.caption_source[i] || 'none'];
      case 'shard': return [C.shard[i] || '?'];
      default: return [''];
    }
  }
  function rebuild() {
    const t0 = performance.now();
    const idx = [];
    for (let i = 0; i < N; i++) if (matches(i)) idx.push(i);
    const key = sortKey();
    if (key) {
      const dir = state.desc ? -1 : 1;
      const keys = new Map(idx.map((i) => [i, key(i)]));
      idx.sort((a, b) => {
        const x = keys.get(a), y = keys.get(b);
        if (x === y) return a - b;
        if (x === null || x === undefined) return 1;  // no value: last, either way
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * dir;
      });
    } else if (state.desc) idx.reverse();
    const groups = new Map();
    for (const i of idx) for (const g of groupsOf(i)) { if (!groups.has(g)) groups.set(g, []); groups.get(g).push(i); }
    let names = [...groups.keys()];
    if (state.group === 'verdict') names.sort((a, b) => STATUS_ORDER.indexOf(a) - STATUS_ORDER.indexOf(b));
    else if (state.group === 'rule') names.sort((a, b) => groups.get(b).length - groups.get(a).length);
    else names.sort();
    const perRow = Math.max(1, Math.floor(($('grid').clientWidth - 20) / CARD_W));
    const rows = [], offsets = [];
    let y = 0;
    for (const g of names) {
      const members = groups.get(g);
      if (state.group !== 'none') { rows.push({ head: g, n: members.length }); offsets.push(y); y += HEAD_H; }
      for (let k = 0; k < members.length; k += perRow) { rows.push({ cards: members.slice(k, k + perRow) }); offsets.push(y); y += ROW_H; }
    }
    view = { rows, offsets, total: y, shown: idx.length };
    $('spacer').style.height = y + 'px';
    $('showing').textContent = 'showing ' + idx.length + ' of ' + N + ' clips' + (state.shard ? ' (shard ' + state.shard + ' only)' : '');
    $('showing').dataset.count = idx.length;
    rendered.forEach((el) => el.remove());
    rendered.clear();
    renderVisible();
    timings.rebuild_ms = performance.now() - t0;
  }
  // ------------------------------------------------------------------ the virtual grid
  const rendered = new Map();  // row index -> element
  let frame = 0;
  function scheduleRender() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderVisible(); }); }
  function firstRow(y) {
    let lo = 0, hi = view.offsets.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (view.offsets[mid] <= y) lo = mid; else hi = mid - 1; }
    return Math.max(0, lo);
  }
  function renderVisible() {
    const t0 = performance.now();
    const grid = $('grid');
    const top = grid.scrollTop - BUFFER_PX, bottom = grid.scrollTop + grid.clientHeight + BUFFER_PX;
    const wanted = new Set();
    for (let r = firstRow(Math.max(0, top)); r < view.rows.length && view.offsets[r] < bottom; r++) wanted.add(r);
    for (const [r, el] of rendered) if (!wanted.has(r)) { el.remove(); rendered.delete(r); }
    const spacer = $('spacer');
    for (const r of wanted) {
      if (rendered.has(r)) continue;
      const row = view.rows[r];
      const el = document.createElement('div');
      el.style.top = view.offsets[r] + 'px';
      if (row.head !== undefined) {
        el.className = 'group-head';
        el.dataset.group = row.head;
        el.innerHTML = esc(groupLabel(row.head)) + ' <small>' + row.n + ' clips' +
          (state.group === 'rule' && row.head !== 'kept' ? '' : '') + '</small>';
      } else {
        el.className = 'card-row';
        el.innerHTML = row.cards.map(cardHtml).join('');
      }
      spacer.appendChild(el);
      rendered.set(r, el);
    }
    timings.render_ms = performance.now() - t0;
    (timings.renders = timings.renders || []).push(timings.render_ms);
  }
  function groupLabel(g) {
    if (state.group === 'source') return base(g) + '  (' + g + ')';
    if (state.group === 'rule' && g !== 'kept' && STATUS_ORDER.includes(g)) return g;
    return g;
  }
  function ruleChips(i) {
    const st = judged.status[i], reasons = judged.reasons[i];
    if (st === 'kept') return '';
    return reasons.map((r) => {
      const m = /^([A-Za-z_][\w]*)([<>])(.+)$/.exec(r);
      if (m && C.values[m[1]]) {
        return '<span class="rulechip" title="' + esc(r) + '">' + esc(m[1]) + ' ' + esc(num(C.values[m[1]][i], 3)) +
          ' ' + esc(m[2]) + ' ' + esc(m[3]) + '</span>';
      }
      return '<span class="rulechip other" title="' + esc(r) + '">' + esc(r) + '</span>';
    }).join('');
  }
  function lineage(i) {
    const span = C.start_s[i] !== null && C.start_s[i] !== undefined ? ' · ' + num(C.start_s[i], 4) + '–' + num(C.end_s[i], 4) + ' s' : '';
    return C.source_path[i] ? base(C.source_path[i]) + span : base(C.path[i]);
  }
  function thumbHtml(i) {
    const p = media(C.preview[i]);
    if (p) return '<img loading="lazy" alt="" src="' + esc(p) + '" onerror="this.replaceWith(Object.assign(document.createElement(\'span\'),{textContent:\'preview file missing\'}))">';
    const s = media(C.still[i]);
    if (s) return '<img loading="lazy" alt="" src="' + esc(s) + '"><span class="tag">no preview: a sampled frame</span>';
    return '<span>' + (C.status[i] === 'failed' || C.status[i] === 'not curated' || C.status[i] === 'split' ? 'nothing decoded' : 'no preview') + '</span>';
  }
  function cardHtml(i) {
    const st = judged.status[i], was = C.status[i];
    const flip = st !== was;
    const cls = 'card st-' + st.replace(' ', '-') + (flip ? ' flipped' : '');
    return '<div class="' + cls + '" data-i="' + i + '" data-id="' + esc(C.video_id[i] || '') + '" data-status="' + esc(st) +
      '" data-path="' + esc(C.path[i]) + '" title="' + esc(C.path[i]) + '">' +
      '<div class="thumb">' + thumbHtml(i) + '</div><div class="body"><div class="badges"><span class="badge ' +
      st.replace(' ', '-') + '">' + esc(st) + '</span>' + (flip ? '<span class="badge flip">was ' + esc(was) + '</span>' : '') +
      '</div><div class="rules">' + ruleChips(i) + '</div><div class="caption">' +
      (C.caption[i] ? esc(C.caption[i]) + ' <span class="src">(' + esc(C.caption_source[i] || '?') + ')</span>' : '<span class="src">no caption</span>') +
      '</div><div class="lineage">' + esc(lineage(i)) + ' · ' + esc(C.shard[i] || '') + '</div></div></div>';
  }

  // ------------------------------------------------------------------ one clip
  function openFromHash() {
    // #shard=<shard> (the Dagster UI's link from a shard's curated_videos), #clip=<id>&i=<row>
    const params = new URLSearchParams(location.hash.slice(1));
    const shard = params.get('shard') || '';
    if (shard !== state.shard) { state.shard = shard; rebuild(); }
    const id = params.get('clip');
    if (id === null) { $('detail').hidden = true; return; }
    let i = params.get('i') !== null ? +params.get('i') : undefined;
    if (i === undefined || !(i < N) || (C.video_id[i] || '') !== id) i = byId.get(id);
    if (i === undefined) return;
    openDetail(i);
  }
  async function getDetail(i) {
    const id = C.video_id[i];
    if (!id || C.status[i] === 'not curated') return null;
    if (STATIC) return details[id] || null;
    const resp = await fetch('api/clip/' + encodeURIComponent(id) + '?shard=' + encodeURIComponent(C.shard[i] || ''));
    if (!resp.ok) return { notes: ['detail did not load: HTTP ' + resp.status + ' ' + (await resp.text())], frames: [] };
    return resp.json();
  }
  function closeDetail() {
    $('detail').hidden = true;
    const keep = state.shard ? '#shard=' + encodeURIComponent(state.shard) : '';
    if (location.hash !== keep) history.replaceState(null, '', location.pathname + location.search + keep);
  }
  async function openDetail(i) {
    const box = $('detail-box');
    $('detail').hidden = false;
    box.innerHTML = '<button class="close" type="button">close</button><h3>' + esc(C.path[i]) + '</h3><p>loading…</p>';
    box.querySelector('.close').onclick = closeDetail;
    const d = await getDetail(i);
    box.innerHTML = detailHtml(i, d);
    box.querySelector('.close').onclick = closeDetail;
    box.dataset.id = C.video_id[i] || '';
  }
  function scoresTable(i) {
    let html = '<table class="scores"><tr><th>score</th><th>value</th><th>threshold (this clip)</th></tr>';
    for (const s of D.scores) {
      const v = C.values[s.column][i];
      const all = controls.filter((c) => c.column === s.column).map((c) => ({ c, b: effective(i, c.key) }));
      const bounds = all.filter((x) => x.b !== null && x.b !== undefined);
      const skipped = all.filter((x) => shared[x.c.key] !== null && (x.b === null || x.b === undefined));
      const fails = bounds.some(({ c, b }) => v !== null && v !== undefined && ((c.op === '<' && v < b) || (c.op === '>' && v > b)));
      html += '<tr><td>' + esc(s.column) + '</td><td class="' + (fails && !C.fixed[i] ? 'fail' : '') + '">' + esc(num(v, 4)) +
        '</td><td>' + (bounds.length ? bounds.map(({ c, b }) => 'reject if ' + esc(c.op) + ' ' + esc(fmtG(b))).join(', ') : '–') +
        (skipped.length ? ' <span class="hint">' + skipped.map((x) => esc(x.c.key)) .join(', ') + ' not applied to this clip' +
          (x => x ? ' (' + x + ')' : '')(D.off[skipped[0].c.key] || (skipped[0].c.noise_under_tiny && C.model_profile[i] === 'tiny' ? 'tiny random-weight scores' : '')) + '</span>' : '') +
        '</td></tr>';
    }
    return html + '</table>';
  }
  function motionPlot(d) {
    const pairs = (d.motion && d.motion.pairs) || [];
    if (!pairs.length) return '<p>no motion pairs stored</p>';
    const fps = d.fps || 1, W = 560, H = 150, P = 28;
    const xs = pairs.map((p) => p.to / fps), ys = pairs.map((p) => p.score ?? 0);
    const bounds = controls.filter((c) => c.column === 'motion_score' && shared[c.key] !== null).map((c) => shared[c.key]);
    const xmax = Math.max(...xs, 1e-9), ymax = Math.max(...ys, ...bounds, 1e-9) * 1.1;
    const X = (x) => P + (W - 2 * P) * x / xmax, Y = (y) => H - P + 4 - (H - 2 * P) * y / ymax;
    const pts = xs.map((x, k) => X(x).toFixed(1) + ',' + Y(ys[k]).toFixed(1)).join(' ');
    let svg = '<svg class="plot" data-testid="motion-plot" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '">' +
      '<line x1="' + P + '" y1="' + (H - P + 4) + '" x2="' + (W - P) + '" y2="' + (H - P + 4) + '" stroke="#999"/>' +
      '<polyline fill="none" stroke="#4C72B0" stroke-width="2" points="' + pts + '"/>';
    for (let k = 0; k < xs.length; k++) svg += '<circle cx="' + X(xs[k]).toFixed(1) + '" cy="' + Y(ys[k]).toFixed(1) + '" r="3" fill="#4C72B0"><title>frames ' + pairs[k].from + '→' + pairs[k].to + ': ' + num(ys[k], 4) + '</title></circle>';
    for (const b of bounds) svg += '<line x1="' + P + '" x2="' + (W - P) + '" y1="' + Y(b) + '" y2="' + Y(b) + '" stroke="#C44E52" stroke-dasharray="4 3"/><text x="' + (W - P) + '" y="' + (Y(b) - 3) + '" font-size="10" text-anchor="end" fill="#C44E52">' + fmtG(b) + '</text>';
    svg += '<text x="' + P + '" y="' + (H - 6) + '" font-size="10">0 s</text><text x="' + (W - P) + '" y="' + (H - 6) + '" font-size="10" text-anchor="end">' + num(xmax, 3) + ' s</text>' +
      '<text x="4" y="12" font-size="10">' + num(ymax / 1.1, 3) + '</text></svg>';
    return svg + '<div class="hint">mean optical-flow magnitude per sampled pair (2 fps), at the pair\'s second frame; motion_score ' + num(d.motion.score, 4) + ' is their mean</div>';
  }
  function framesHtml(i, d) {
    if (!d.frames || !d.frames.length) return '<p>no sampled frames</p>';
    const boxes = d.boxes ? d.boxes.per_frame : null;
    return '<div class="frames" data-testid="frames">' + d.frames.map((f, k) => {
      const src = media(f.key);
      let overlay = '';
      if (boxes && boxes[k]) {
        const flat = boxes[k];
        let polys = '';
        for (let b = 0; b + 7 < flat.length; b += 8) polys += '<polygon data-testid="ocr-box" points="' + [0, 2, 4, 6].map((o) => flat[b + o] + ',' + flat[b + o + 1]).join(' ') + '"/>';
        overlay = '<svg viewBox="0 0 1 1" preserveAspectRatio="none">' + polys + '</svg>';
      }
      const per = Object.entries(d.per_frame || {}).map(([col, vals]) => col + ' ' + num(vals[k], 3)).join(' · ');
      const nBoxes = boxes && boxes[k] ? boxes[k].length / 8 : null;
      return '<div class="frame"><div class="pic">' + (src ? '<img alt="frame ' + f.index + '" src="' + esc(src) + '">' : '<span>frame outside the store</span>') + overlay +
        '</div><div class="cap">frame ' + f.index + (f.time !== null && f.time !== undefined ? ' · ' + num(f.time, 3) + ' s' : '') +
        (nBoxes !== null ? ' · ' + nBoxes + ' text box(es)' : '') + '<br>' + esc(per) + '</div></div>';
    }).join('') + '</div>' + (d.boxes ? '<div class="hint">yellow: the text boxes ' + esc(d.boxes.score) + ' summed; ' + esc(d.boxes.column) + ' is their area over the frame\'s, averaged over the frames</div>' : '');
  }
  function partnerHtml(i, d) {
    const nd = C.near_duplicate_of[i];
    const others = [];
    for (let j = 0; j < N; j++) if (C.near_duplicate_of[j] && C.near_duplicate_of[j] === C.video_id[i]) others.push(j);
    const dup = (C.reasons[i] || []).find((r) => r.startsWith('duplicate_of:'));
    if (!nd && !others.length && !dup) return '';
    const panel = (j, label) => '<div data-testid="partner"><div><strong>' + esc(label) + '</strong></div>' +
      (j !== undefined ? '<div class="thumb">' + thumbHtml(j) + '</div><div>' + esc(base(C.path[j])) + ' · ' + esc(judged.status[j]) + '</div>' : '<div>not in this data dir</div>') + '</div>';
    let html = '<h3>Near-duplicate</h3>';
    if (nd) {
      const sim = d && d.near_duplicate ? ' (similarity ' + num(d.near_duplicate.similarity, 3) + ', threshold ' + num(d.near_duplicate.threshold, 3) + ')' : '';
      html += '<p>rejected as a near-duplicate of ' + esc(nd) + sim + '</p><div class="side-by-side">' + panel(i, 'this clip') + panel(byId.get(nd), 'the clip it repeats (kept)') + '</div>';
    }
    if (others.length) html += '<p>' + others.length + ' clip(s) were rejected as near-duplicates of this one</p><div class="side-by-side">' +
      panel(i, 'this clip') + others.slice(0, 3).map((j) => panel(j, 'its near-duplicate')).join('') + '</div>';
    if (dup) html += '<p>a byte-identical copy of ' + esc(dup.slice('duplicate_of:'.length)) + '</p>';
    return html;
  }
  function detailHtml(i, d) {
    const st = judged.status[i];
    let html = '<button class="close" type="button">close</button><h3>' + esc(base(C.path[i])) + ' <span class="badge ' + st.replace(' ', '-') + '">' + esc(st) + '</span>' +
      (st !== C.status[i] ? ' <span class="badge flip">was ' + esc(C.status[i]) + '</span>' : '') + '</h3>' +
      '<div>' + esc(C.path[i]) + '</div>' +
      '<div class="rules">' + ruleChips(i) + '</div>' +
      '<p>' + (C.caption[i] ? '“' + esc(C.caption[i]) + '” <span class="hint">(' + esc(C.caption_source[i] || '?') + ' caption)</span>' : 'no caption') + '</p>' +
      '<p>' + (C.source_path[i] ? 'cut from ' + esc(C.source_path[i]) + ', ' + num(C.start_s[i], 5) + ' – ' + num(C.end_s[i], 5) + ' s' : 'scored whole (not cut from a longer source)') +
      ' · ' + esc(C.shard[i] || '') + ' · video_id ' + esc(C.video_id[i] || '–') + '</p>';
    if (C.status[i] === 'failed' || C.status[i] === 'not curated' || C.status[i] === 'split') html += '<p>' + esc((C.reasons[i] || []).join('; ')) + '</p>';
    if (!d) return html;
    if (d.notes && d.notes.length) html += '<ul class="notes">' + d.notes.map((n) => '<li>' + esc(n) + '</li>').join('') + '</ul>';
    html += '<h3>Scores</h3>' + scoresTable(i);
    html += '<h3>Sampled frames</h3>' + framesHtml(i, d);
    html += '<h3>Motion per sampled frame pair</h3>' + motionPlot(d);
    html += partnerHtml(i, d);
    return html;
  }
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDetail(); });
  $('detail').addEventListener('click', (e) => { if (e.target === $('detail')) closeDetail(); });

  // ------------------------------------------------------------------ the recipe
  function changedThresholds() {
    const out = {};
    for (const c of controls) out[c.key] = shared[c.key];
    return out;
  }
  function yamlScalar(v) {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean' || typeof v === 'number') return String(v);
    return JSON.stringify(String(v));  // a JSON string is a YAML double-quoted scalar
  }
  function toYaml(v, indent) {
    const pad = '  '.repeat(indent);
    if (Array.isArray(v)) return v.length ? v.map((x) => pad + '- ' + (typeof x === 'object' && x !== null ? '\n' + toYaml(x, indent + 1) : yamlScalar(x))).join('\n') : pad + '[]';
    return Object.entries(v).map(([k, x]) => (x !== null && typeof x === 'object' && Object.keys(x).length)
      ? pad + k + ':\n' + toYaml(x, indent + 1) : pad + k + ': ' + (x !== null && typeof x === 'object' ? (Array.isArray(x) ? '[]' : '{}') : yamlScalar(x))).join('\n');
  }
  async function saveRecipe(write) {
    const out = $('save-result');
    out.hidden = false;
    const thresholds = changedThresholds();
    if (STATIC || !write) {
      const recipe = JSON.parse(JSON.stringify(D.recipe.recipe || {}));
      recipe.curated_videos = recipe.curated_videos || {};
      recipe.curated_videos.thresholds = Object.assign({}, recipe.curated_videos.thresholds || {}, thresholds);
      out.innerHTML = '<div>The data dir\'s recipe with these thresholds' + (STATIC ? ' (this static copy cannot write files: save it as a .yaml file)' : '') +
        ':</div><pre data-testid="yaml">' + esc(toYaml(recipe, 0)) + '\n</pre><div>then: <code>' + esc(D.recipe.command_template || '') + '</code></div>';
      return;
    }
    out.textContent = 'saving…';
    const resp = await fetch('api/recipe', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ thresholds }) });
    const body = await resp.json().catch(() => ({ error: 'HTTP ' + resp.status }));
    if (!resp.ok) { out.innerHTML = '<div class="notes" data-testid="save-error">not saved: ' + esc(body.error) + '</div>'; return; }
    out.innerHTML = '<div data-testid="saved-path">written: <code>' + esc(body.path) + '</code></div>' +
      '<div>' + (body.changes.length ? 'changes: ' + esc(body.changes.join('; ')) : 'no threshold changed') + '</div>' +
      '<div>goes stale: ' + esc(body.stale.join(', ') || 'nothing') + ' (scores are not recomputed)</div>' +
      '<div>apply it: <code data-testid="command">' + esc(body.command) + '</code></div><pre data-testid="yaml">' + esc(body.yaml) + '</pre>';
  }

  // What the page computed, for tests and the console: video_id/path -> [status, reasons].
  window.reviewVerdicts = () => {
    const out = {};
    for (let i = 0; i < N; i++) out[C.path[i]] = [judged.status[i], judged.reasons[i]];
    return out;
  };
  window.reviewThresholds = () => Object.assign({}, shared);

  function fail(err) {
    $('problems').hidden = false;
    $('problems').innerHTML = '<strong>The gallery could not load:</strong> ' + esc(err.message);
    document.body.dataset.ready = 'error';
  }
  load(false).catch(fail);
})();
