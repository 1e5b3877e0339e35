/** The dashboard's page: plain HTML and CSS, its script from /_callkeeper/ui/dashboard.js (no CDN). */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>callkeeper</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1rem; background: #1d2330; color: #fff; flex-wrap: wrap; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header button { margin-left: .3rem; }
  main { display: grid; grid-template-columns: 2fr 1fr; gap: 1rem; padding: 1rem; }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .6rem .8rem; overflow: auto; }
  h2 { font-size: 1rem; margin: .2rem 0 .6rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid #eef0f3; font-variant-numeric: tabular-nums; white-space: nowrap; }
  tr.selected { background: #eef4ff; }
  tr[data-call-id] { cursor: pointer; }
  .state-terminated { color: #8a8f98; }
  .urgent { color: #b3261e; font-weight: 600; }
  .result { font-weight: 600; }
  code, pre, textarea { font: 12px ui-monospace, monospace; }
  textarea { width: 100%; box-sizing: border-box; height: 5.5rem; }
  #events { height: 14rem; overflow: auto; margin: 0; background: #fafbfc; white-space: pre-wrap; }
  .error { color: #b3261e; }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1>callkeeper</h1>
  <span>virtual time <strong id="clock">…</strong> <span id="scale"></span></span>
  <span>advance
    <button data-advance="60000">+1 min</button><button data-advance="900000">+15 min</button><button data-advance="2700000">+45 min</button>
  </span>
  <span id="status"></span>
  <label>control token <input id="token" type="password" autocomplete="off" size="14"></label>
</header>
<main>
  <section>
    <h2>Calls</h2>
    <table id="calls"><thead><tr><th>call</th><th>state</th><th>app</th><th>last keepAlive</th><th>ends in</th><th>result</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Fault rules</h2>
    <table id="faults"><thead><tr><th>rule</th><th>effect</th><th>left</th><th></th></tr></thead><tbody></tbody></table>
    <form id="add-fault">
      <textarea id="fault-json" spellcheck="false">{"match": {"path": "/communications/calls/*/keepAlive"}, "effect": {"status": 503, "retryAfter": 10}, "count": 3}</textarea>
      <button type="submit">Add rule</button> <span id="fault-error" class="error"></span>
    </form>
  </section>
  <section>
    <h2>Notifications <span id="notes-of"></span></h2>
    <table id="notifications"><thead><tr><th>#</th><th>change</th><th>state</th><th>status</th><th>attempts</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Events</h2>
    <pre id="events"></pre>
  </section>
</main>
<script src="/_callkeeper/ui/dashboard.js"></script>
</body>
</html>
`;
