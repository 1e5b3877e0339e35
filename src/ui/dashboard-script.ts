/**
 * The dashboard's browser script, plain JavaScript. State comes from the control API (the
 * store, so every instance shows the same); the event stream nudges a refresh and fills the
 * event log; countdowns tick locally from the virtual clock and its scale. The control token,
 * when the user gives one, is kept in sessionStorage and sent as a header, never in a URL.
 */
export const DASHBOARD_SCRIPT = `'use strict';
(() => {
  const $ = (sel) => document.querySelector(sel);
  const tokenInput = $('#token');
  tokenInput.value = sessionStorage.getItem('callkeeper-control-token') || '';
  tokenInput.addEventListener('change', () => {
    sessionStorage.setItem('callkeeper-control-token', tokenInput.value);
    refresh();
    listen();
  });
  const headers = (json) => {
    const h = {};
    if (json) h['content-type'] = 'application/json';
    if (tokenInput.value) h['x-callkeeper-control-token'] = tokenInput.value;
    return h;
  };
  const api = async (path, method = 'GET', body) => {
    const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new Error((data && data.error && data.error.message) || res.status + ' ' + res.statusText);
    return data;
  };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : '');
  const span = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  };

  let clock = { epochMs: 0, scale: 0, at: performance.now() };
  let calls = [];
  let selected;
  const virtualNow = () => clock.epochMs + (performance.now() - clock.at) * clock.scale;

  const status = (text, error) => {
    const el = $('#status');
    el.textContent = text;
    el.className = error ? 'error' : '';
  };

  function renderClock() {
    $('#clock').textContent = new Date(virtualNow()).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
    $('#scale').textContent = clock.scale === 1 ? '' : clock.scale === 0 ? '(stopped: moves when advanced)' : '(x' + clock.scale + ')';
    for (const cell of document.querySelectorAll('td.countdown[data-deadline]')) {
      const left = Number(cell.dataset.deadline) - virtualNow();
      cell.textContent = span(left);
      cell.classList.toggle('urgent', left < 5 * 60000);
    }
  }

  function renderCalls() {
    const rows = calls.map((c) => {
      const result = c.resultInfo ? c.resultInfo.code + '/' + c.resultInfo.subcode : '';
      const deadline = c.deadlineDateTime && c.state !== 'terminated' ? Date.parse(c.deadlineDateTime) : undefined;
      return '<tr data-call-id="' + esc(c.id) + '" class="state-' + esc(c.state) + (c.id === selected ? ' selected' : '') + '">' +
        '<td><code>' + esc(c.id.slice(0, 8)) + '</code></td><td class="state">' + esc(c.state) + '</td><td><code>' + esc(c.appId.slice(0, 8)) + '</code></td>' +
        '<td>' + esc(time(c.lastKeepAliveDateTime)) + '</td>' +
        '<td class="countdown"' + (deadline === undefined ? '' : ' data-deadline="' + deadline + '"') + '>' + (deadline === undefined ? '' : span(deadline - virtualNow())) + '</td>' +
        '<td class="result" title="' + esc(c.resultInfo ? c.resultInfo.message : '') + '">' + esc(result) + '</td></tr>';
    });
    $('#calls tbody').innerHTML = rows.join('') || '<tr><td colspan="6">no calls yet</td></tr>';
  }

  async function renderNotifications() {
    const body = $('#notifications tbody');
    if (!selected) {
      body.innerHTML = '<tr><td colspan="5">select a call</td></tr>';
      return;
    }
    $('#notes-of').textContent = 'of ' + selected.slice(0, 8);
    const list = await api('/_callkeeper/notifications?callId=' + encodeURIComponent(selected));
    body.innerHTML = list.value.slice().reverse().map((n) =>
      '<tr><td>' + n.seq + '</td><td>' + esc(n.changeType) + '</td><td>' + esc(n.state || 'participants') + '</td><td>' + esc(n.status) + '</td><td>' +
      n.attempts.map((a) => esc((a.statusCode === null ? 'error' : a.statusCode) + ' ' + a.outcome)).join(', ') + '</td></tr>').join('');
  }

  async function renderFaults() {
    const list = await api('/_callkeeper/faults');
    $('#faults tbody').innerHTML = list.value.map((r) =>
      '<tr><td title="' + esc(JSON.stringify(r.match)) + '"><code>' + esc(r.target === 'graph' ? (r.match.path || '*') : 'notifications') + '</code></td>' +
      '<td>' + esc(JSON.stringify(r.effect)) + '</td><td>' + (r.remaining === null ? '∞' : r.remaining) + '</td>' +
      '<td><button data-remove-fault="' + esc(r.id) + '">remove</button></td></tr>').join('') || '<tr><td colspan="4">none</td></tr>';
  }

  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      do {
        again = false;
        const c = await api('/_callkeeper/clock');
        clock = { epochMs: c.epochMs, scale: c.scale, at: performance.now() };
        calls = (await api('/_callkeeper/calls?$top=100')).value;
        renderCalls();
        renderClock();
        await renderFaults();
        await renderNotifications();
        status('');
      } while (again);
    } catch (err) {
      status(String(err.message || err), true);
    } finally {
      refreshing = false;
    }
  }

  // Stamped with the server's (virtual) time the event carries; the page's own lines have none.
  const log = (line, at) => {
    const el = $('#events');
    el.textContent = ((at ? at.slice(11, 19) : '--:--:--') + ' ' + line + '\\n' + el.textContent).slice(0, 20000);
  };

  // Server-Sent Events over fetch, so the token can go in a header (EventSource cannot send one).
  let stream;
  async function listen() {
    if (stream) stream.abort();
    const ctl = new AbortController();
    stream = ctl;
    for (let delay = 1000; !ctl.signal.aborted; delay = Math.min(delay * 2, 15000)) {
      try {
        const res = await fetch('/_callkeeper/events', { headers: headers(false), signal: ctl.signal });
        if (!res.ok || !res.body) throw new Error('events: ' + res.status);
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\\n\\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const event = (/^event: (.*)$/m.exec(frame) || [])[1];
            const data = (/^data: (.*)$/m.exec(frame) || [])[1];
            if (!event || !data) continue;
            const d = JSON.parse(data);
            log(event === 'call' ? 'call ' + d.callId.slice(0, 8) + ' ' + d.change + ' ' + d.state + (d.resultInfo ? ' ' + d.resultInfo.code + '/' + d.resultInfo.subcode : '')
              : 'notification #' + d.seq + ' of ' + d.callId.slice(0, 8) + ' (' + (d.state || 'participants') + '): ' + (d.statusCode === null ? 'error' : d.statusCode) + ' ' + d.outcome, d.at);
            refresh();
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        log('event stream: ' + (err.message || err) + '; reconnecting');
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  document.addEventListener('click', async (e) => {
    const t = e.target;
    if (!(t instanceof Element)) return;
    try {
      if (t.matches('[data-advance]')) {
        await api('/_callkeeper/clock/advance', 'POST', { ms: Number(t.getAttribute('data-advance')) });
        await refresh();
      } else if (t.matches('[data-remove-fault]')) {
        await api('/_callkeeper/faults/' + encodeURIComponent(t.getAttribute('data-remove-fault')), 'DELETE');
        await refresh();
      } else {
        const row = t.closest('tr[data-call-id]');
        if (row) {
          selected = row.getAttribute('data-call-id');
          renderCalls();
          await renderNotifications();
        }
      }
    } catch (err) {
      status(String(err.message || err), true);
    }
  });
  $('#add-fault').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('#fault-error').textContent = '';
    try {
      await api('/_callkeeper/faults', 'POST', JSON.parse($('#fault-json').value));
      await refresh();
    } catch (err) {
      $('#fault-error').textContent = String(err.message || err);
    }
  });

  setInterval(renderClock, 250);
  // Other instances' changes reach this one's stream only through the store: poll it too.
  setInterval(refresh, 3000);
  refresh();
  listen();
})();
`;
