/**
 * /ui/assets/job.js: the job page's script, plain browser JavaScript kept as a string so
 * `tsc` output carries it (the service image ships dist/src only). It fetches the job's
 * view from /ui/api/jobs/:id, follows /ui/api/jobs/:id/events (cookie-authenticated SSE)
 * and draws the two charts as SVG. Everything from a job is set with textContent.
 */
export const JOB_JS = `'use strict';
(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const TERMINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
  const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'];
  const $ = (id) => document.getElementById(id);
  const text = (id, value) => { const el = $(id); if (el) el.textContent = value == null || value === '' ? '–' : String(value); };

  const logout = $('logout');
  if (logout) logout.addEventListener('click', async () => {
    await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
    location.assign('/ui/login');
  });
  const match = /^\\/ui\\/jobs\\/([0-9a-f-]{36})\\/?$/.exec(location.pathname);
  if (!match || !$('events')) return;
  const id = match[1];
  const live = (value) => { $('live').textContent = value; };
  const toLogin = () => location.assign('/ui/login?next=' + encodeURIComponent(location.pathname));

  function bytes(n) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function el(name, attrs, content) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (content !== undefined) node.textContent = content;
    return node;
  }
  /** Horizontal bars: rows of {label, value, valueText, cls, data, title}. */
  function bars(svg, rows, labelWidth, width) {
    svg.replaceChildren();
    const rowHeight = 24, barMax = width - labelWidth - 90;
    const max = Math.max(1, ...rows.map((r) => r.value));
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + Math.max(rowHeight, rows.length * rowHeight));
    rows.forEach((r, i) => {
      const y = i * rowHeight;
      const g = el('g', { class: 'row' });
      g.append(el('text', { x: labelWidth - 8, y: y + 16, 'text-anchor': 'end' }, r.label));
      const w = r.value > 0 ? Math.max(2, (r.value / max) * barMax) : 0;
      const rect = el('rect', { class: 'bar ' + r.cls, x: labelWidth, y: y + 4, width: w.toFixed(1), height: rowHeight - 8, rx: 3 });
      for (const [k, v] of Object.entries(r.data)) rect.setAttribute('data-' + k, String(v));
      if (r.title) rect.append(el('title', {}, r.title));
      g.append(rect, el('text', { class: 'value', x: labelWidth + w + 6, y: y + 16 }, r.valueText));
      svg.append(g);
    });
  }
  function renderCharts(job) {
    const sev = $('severity-chart');
    $('severity-empty').hidden = !!job.severities;
    sev.hidden = !job.severities;
    $('severity-total').textContent = '';
    if (job.severities) {
      const total = SEVERITIES.reduce((sum, s) => sum + job.severities[s], 0);
      $('severity-total').textContent = total + (total === 1 ? ' finding' : ' findings') + \
(job.fixable != null ? ', ' + job.fixable + ' fixable' : '');
      bars(sev, SEVERITIES.map((s) => ({ label: s.toUpperCase(), value: job.severities[s], valueText: String(job.severities[s]), \
cls: 'bar-' + s, data: { severity: s, count: job.severities[s] } })), 90, 480);
    }
    const layers = $('layer-chart');
    const has = !!(job.layers && job.layers.length);
    $('layer-empty').hidden = has;
    layers.hidden = !has;
    if (has) {
      bars(layers, job.layers.map((l, i) => {
        const what = (l.created_by || l.digest.slice(0, 19)).replace(/\\s+/g, ' ');
        return { label: '#' + (i + 1) + ' ' + (what.length > 48 ? what.slice(0, 47) + '…' : what), value: l.size_bytes, \
valueText: bytes(l.size_bytes), cls: 'bar-layer', \
data: { digest: l.digest, size: l.size_bytes }, title: l.digest + '\\n' + (l.created_by || '') };
      }), 380, 1000);
    }
  }
  function renderState(state) {
    const badge = $('job-state');
    badge.textContent = state;
    badge.className = 'state state-' + state;
    badge.setAttribute('data-state', state);
  }
  async function loadJob() {
    const res = await fetch('/ui/api/jobs/' + id, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (res.status === 401) return toLogin();
    if (!res.ok) { text('job-error', 'could not load the job (' + res.status + ')'); return; }
    const job = await res.json();
    text('job-id', job.id); text('job-action', job.action); text('job-tenant', job.tenant); text('job-image', job.image);
    text('job-created', job.created_at); text('job-started', job.started_at); text('job-finished', job.finished_at);
    text('job-error', job.error ? job.error.code + ': ' + job.error.message : '');
    renderState(job.state);
    renderCharts(job);
    document.title = 'stevedore · ' + job.action + ' ' + job.id.slice(0, 8) + ' · ' + job.state;
  }

  const list = $('events');
  function describe(type, d) {
    if (type === 'state') return d.state + (d.error ? ' (' + d.error.code + ': ' + d.error.message + ')' : \
d.code ? ' (' + d.code + ')' : '');
    if (type === 'progress') return d.message != null ? String(d.message) : JSON.stringify(d);
    if (type === 'log') return d.line != null ? String(d.line) : '';
    if (type === 'step' && d.step) return d.step.name + ' · ' + d.step.state + (d.step.cached ? ' (cached)' : '') + \
(d.step.duration_ms != null ? ' ' + d.step.duration_ms + ' ms' : '');
    if (type === 'warning') return (d.rule ? d.rule + ': ' : '') + String(d.message ?? '') + (d.line ? ' (line ' + d.line + ')' : '');
    if (type === 'result') return 'result recorded';
    return JSON.stringify(d);
  }
  function append(type, d) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const li = document.createElement('li');
    li.className = 'event event-' + type + (d.stream === 'stderr' ? ' stderr' : '');
    li.setAttribute('data-type', type);
    const at = document.createElement('span');
    at.className = 'at';
    at.textContent = typeof d.at === 'number' ? new Date(d.at).toISOString().slice(11, 23) : '';
    const kind = document.createElement('span');
    kind.className = 'type';
    kind.textContent = type;
    li.append(at, kind, document.createTextNode(describe(type, d)));
    list.append(li);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function follow() {
    const stream = new EventSource('/ui/api/jobs/' + id + '/events');
    live(' ● live');
    for (const type of ['state', 'progress', 'step', 'log', 'warning', 'result']) {
      stream.addEventListener(type, (event) => {
        let data = {};
        try { data = JSON.parse(event.data); } catch { /* keep the line */ }
        append(type, data);
        if (type === 'state' && data.state) {
          renderState(data.state);
          if (TERMINAL.includes(data.state)) {
            stream.close();
            live('');
            loadJob();
          }
        }
      });
    }
    stream.addEventListener('error', (event) => {
      if (event.data) append('error', JSON.parse(event.data));
      // The browser reconnects by itself (resuming after Last-Event-ID) unless it gave up.
      if (stream.readyState === EventSource.CLOSED) live(' disconnected: reload the page');
    });
  }

  loadJob().then(follow, (err) => text('job-error', 'could not load the job: ' + err.message));
})();
`;
