/** The dashboard pages' one stylesheet (served as /ui/assets/style.css; no inline styles, so the CSP needs no 'unsafe-inline'). */
export const STYLE_CSS = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6478; --line: #dfe3ea; --bg: #f5f7fa; --card: #fff; --accent: #2563eb;
  --critical: #b91c1c; --high: #ea580c; --medium: #ca8a04; --low: #2563eb; --unknown: #6b7280; --layer: #0f766e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 12px 24px; background: #111827; color: #fff; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header nav { margin-left: auto; display: flex; gap: 12px; align-items: center; }
header a, header button { color: #cbd5e1; background: none; border: 0; font: inherit; cursor: pointer; text-decoration: none; }
header a:hover, header button:hover { color: #fff; }
main { max-width: 1100px; margin: 24px auto; padding: 0 24px; display: grid; gap: 16px; grid-template-columns: 1fr 1fr; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.card h2 { margin: 0 0 12px; font-size: 15px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.state { display: inline-block; padding: 1px 10px; border-radius: 999px; font: 600 12px/20px system-ui, \
sans-serif; text-transform: uppercase; background: #e5e7eb; }
.state-running { background: #dbeafe; color: #1e40af; } .state-queued { background: #f3f4f6; color: #374151; }
.state-succeeded { background: #dcfce7; color: #166534; } .state-failed, .state-timed_out { background: #fee2e2; color: #991b1b; }
.state-cancelled { background: #fef3c7; color: #92400e; }
.error { color: var(--critical); }
svg.chart { width: 100%; display: block; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg.chart text.value { fill: var(--muted); }
.bar-critical { fill: var(--critical); } .bar-high { fill: var(--high); } .bar-medium { fill: var(--medium); }
.bar-low { fill: var(--low); } .bar-unknown { fill: var(--unknown); } .bar-layer { fill: var(--layer); }
.total { margin: 12px 0 0; color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
ol.events { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow: auto; font: 12px/1.5 ui-monospace, SFMono-Regular, \
Menlo, monospace; background: #0b1020; color: #d1d5db; border-radius: 6px; }
ol.events li { padding: 1px 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
ol.events li:first-child { padding-top: 8px; } ol.events li:last-child { padding-bottom: 8px; }
ol.events .at { color: #6b7280; margin-right: 8px; } ol.events .type { display: inline-block; min-width: 70px; color: #93c5fd; }
ol.events li.event-state .type { color: #86efac; } ol.events li.event-log .type { color: #9ca3af; } ol.events li.stderr { color: #fca5a5; }
ol.events li.event-warning { color: #fcd34d; } ol.events li.event-warning .type { color: #fbbf24; }
.live { color: var(--muted); font-weight: normal; font-size: 12px; margin-left: 8px; }
form.login { max-width: 380px; margin: 12vh auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: \
24px; display: grid; gap: 12px; }
form.login h1 { margin: 0; font-size: 18px; }
form.login input { font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; }
form.login button { font: inherit; padding: 8px 10px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: \
pointer; }
form.login p { margin: 0; color: var(--muted); }
`;
