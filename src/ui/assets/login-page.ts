/** GET /ui/login: the token form. Static: `next` is read by login.js from the query string. */
export const LOGIN_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stevedore · log in</title>
<link rel="stylesheet" href="/ui/assets/style.css">
<script src="/ui/assets/login.js" defer></script>
</head>
<body>
<form class="login" id="login">
  <h1>stevedore dashboard</h1>
  <p>The operator's dashboard: log in with the admin token.</p>
  <input type="password" name="token" id="token" placeholder="admin token" aria-label="admin token" autocomplete="current-password" \
required autofocus>
  <button type="submit" id="submit">Log in</button>
  <p class="error" id="message" role="alert"></p>
</form>
</body>
</html>
`;

/**
 * The form posts JSON with fetch: a cross-site page cannot send a JSON body without a
 * CORS preflight, and the server checks the Origin too. The token never goes into a URL.
 */
export const LOGIN_JS = `'use strict';
document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const message = document.getElementById('message');
  message.textContent = '';
  const token = document.getElementById('token').value.trim();
  const next = new URLSearchParams(location.search).get('next') || '/admin/queues';
  try {
    const res = await fetch('/ui/login', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, \
body: JSON.stringify({ token, next }) });
    const body = await res.json().catch(() => ({}));
    if (res.ok) { location.assign(body.next || '/admin/queues'); return; }
    message.textContent = (body.error && body.error.message) || ('login failed (' + res.status + ')');
  } catch (err) {
    message.textContent = 'login failed: ' + err.message;
  }
});
`;
