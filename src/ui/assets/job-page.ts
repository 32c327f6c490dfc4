const head = (title: string, script?: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/ui/assets/style.css">
${script ? `<script src="${script}" defer></script>\n` : ''}</head>`;

const header = `<header>
  <span class="brand">stevedore</span>
  <nav><a href="/admin/queues">Queues</a><button type="button" id="logout">Log out</button></nav>
</header>`;

/**
 * GET /ui/jobs/:id. Static markup: job.js reads the id from the path and fills every
 * field with textContent, so nothing from a job (log lines are build output) is ever
 * parsed as HTML.
 */
export const JOB_HTML = `${head('stevedore · job', '/ui/assets/job.js')}
<body>
${header}
<main>
  <section class="card">
    <h2>Job</h2>
    <dl class="facts">
      <dt>ID</dt><dd id="job-id">…</dd>
      <dt>Action</dt><dd id="job-action">…</dd>
      <dt>Tenant</dt><dd id="job-tenant">…</dd>
      <dt>State</dt><dd><span class="state" id="job-state">…</span><span class="live" id="live"></span></dd>
      <dt>Image</dt><dd id="job-image">–</dd>
      <dt>Created</dt><dd id="job-created">–</dd>
      <dt>Started</dt><dd id="job-started">–</dd>
      <dt>Finished</dt><dd id="job-finished">–</dd>
      <dt>Error</dt><dd id="job-error" class="error">–</dd>
    </dl>
  </section>
  <section class="card">
    <h2>Vulnerabilities by severity</h2>
    <svg class="chart" id="severity-chart" role="img" aria-label="vulnerabilities by severity"></svg>
    <p class="total" id="severity-total"></p>
    <p class="empty" id="severity-empty" hidden>No scan result for this job.</p>
  </section>
  <section class="card wide">
    <h2>Layer sizes</h2>
    <svg class="chart" id="layer-chart" role="img" aria-label="layer sizes"></svg>
    <p class="empty" id="layer-empty" hidden>No image layers in this job's result.</p>
  </section>
  <section class="card wide">
    <h2>Events</h2>
    <ol class="events" id="events"></ol>
  </section>
</main>
</body>
</html>
`;

/** A small page for a job that does not exist (or has expired). */
export const NOT_FOUND_HTML = `${head('stevedore · no such job', '/ui/assets/job.js')}
<body>
${header}
<main><section class="card wide"><h2>No such job</h2><p class="empty">It never existed or its record has expired.</p></section></main>
</body>
</html>
`;
