// Flowgate console: live updates over Server-Sent Events. Pages work without this script;
// it only keeps what is on screen current.

/** Inbox and approval pages: an approval changed somewhere (any door) → fetch its card again. */
function followApprovals(region) {
  const source = new EventSource('/console/events');
  source.addEventListener('approval', (e) => {
    const { id } = JSON.parse(e.data);
    const card = document.getElementById(`approval-${id}`);
    if (card) {
      // Keep a reason being typed: refresh the card only when focus is not inside it.
      if (card.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return;
      window.htmx?.ajax('GET', `/console/approvals/${id}`, { target: card, swap: 'outerHTML' });
      return;
    }
    if (region.dataset.live === 'approvals' && !document.getElementById('new-approvals')) {
      const note = document.createElement('p');
      note.id = 'new-approvals';
      note.className = 'notice';
      note.setAttribute('role', 'status');
      const link = document.createElement('a');
      link.href = location.pathname + location.search;
      link.textContent = 'New approval requests arrived: reload the list';
      note.append(link);
      region.prepend(note);
    }
  });
  window.addEventListener('pagehide', () => source.close());
}

const approvals = document.querySelector('[data-live="approvals"]');
if (approvals) followApprovals(approvals);

// ---- run page (appended section; the code above belongs to the inbox) -----------------------
// The live log of the run and its child runs, and its step statuses, over one EventSource:
// `snapshot` first, then `log` (id = the log offset after the line, so a reconnect's
// Last-Event-ID resumes without gaps or repeats), `step`, `status`, and `end` (the server closes;
// we must not reconnect).

// A block: these names stay out of the rest of the module.
{
  const LOG_CAP = 5000;
  const URGENCY = ['failed', 'running', 'waiting', 'suspended', 'pending', 'cancelled', 'timed_out', 'skipped', 'completed'];
  const rank = (s) => (URGENCY.includes(s) ? URGENCY.indexOf(s) : URGENCY.length);
  const words = (s) => s.replace(/_/g, ' ');
  const stamp = (iso) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;

  function statusSpan(status) {
    const span = document.createElement('span');
    span.className = `status status-${status}`;
    span.textContent = words(status);
    return span;
  }

  function setStatusClass(el, status) {
    for (const c of [...el.classList]) if (c.startsWith('status-')) el.classList.remove(c);
    el.classList.add(`status-${status}`);
  }

  function followRun(section) {
    const list = section.querySelector('[data-log]');
    const button = section.querySelector('[data-follow]');
    const state = section.querySelector('[data-live-state]');
    const runId = section.dataset.run;
    let following = true;
    let held = [];
    const say = (text) => { if (state) state.textContent = text; };

    const item = (l) => {
      const li = document.createElement('li');
      li.dataset.seq = String(l.seq);
      li.className = `log-${l.level}`;
      const time = document.createElement('time');
      time.dateTime = l.at;
      time.textContent = stamp(l.at);
      const level = document.createElement('span');
      level.className = 'level';
      level.textContent = l.level.toUpperCase();
      const source = document.createElement('span');
      source.className = 'source';
      source.textContent = `[${l.source}/${l.group}]`;
      const message = document.createElement('span');
      message.className = 'message';
      message.textContent = l.message;
      li.append(time, ' ', level, ' ');
      // A child run's line names that run, linked.
      if (l.run !== runId) {
        const run = document.createElement('a');
        run.className = 'log-run';
        run.href = `/console/runs/${encodeURIComponent(l.run)}`;
        run.textContent = l.taskType;
        li.append(run, ' ');
      }
      li.append(source, ' ', message);
      return li;
    };

    const show = (lines) => {
      const fragment = document.createDocumentFragment();
      for (const l of lines) fragment.append(item(l));
      list.append(fragment);
      // The DOM keeps the last LOG_CAP lines; the download has them all.
      while (list.childElementCount > LOG_CAP) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
    };

    // The server sends each line once: the page's offset, then each event's, says where it stands.
    const add = (fresh) => {
      if (!fresh.length) return;
      if (following) return show(fresh);
      held = held.concat(fresh).slice(-LOG_CAP);
      button.textContent = `Resume following (${held.length} new line${held.length === 1 ? '' : 's'})`;
    };

    button?.addEventListener('click', () => {
      following = !following;
      button.textContent = following ? 'Pause following' : 'Resume following';
      if (following && held.length) {
        show(held);
        held = [];
      }
    });

    const collapsedText = (node) => {
      const counts = new Map();
      for (const ref of node.dataset.members.split(' ')) {
        const s = document.getElementById(`step-${ref}`)?.dataset.status ?? 'pending';
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
      const ordered = [...counts.entries()].sort((a, b) => rank(a[0]) - rank(b[0]));
      return { status: ordered[0][0], text: ordered.map(([s, n]) => `${n} ${words(s)}`).join(', ') };
    };

    const step = (s) => {
      const row = document.getElementById(`step-${s.ref}`);
      if (row) {
        row.dataset.status = s.status;
        row.classList.replace('unreached', 'reached');
        const cell = row.querySelector('[data-cell="status"]');
        if (cell) cell.replaceChildren(statusSpan(s.status));
        for (const [key, at] of [['started', s.startedAt], ['finished', s.finishedAt]]) {
          const c = row.querySelector(`[data-cell="${key}"]`);
          if (c && at) {
            const time = document.createElement('time');
            time.dateTime = at;
            time.textContent = stamp(at);
            c.replaceChildren(time);
          }
        }
      }
      const single = [...document.querySelectorAll('.step-graph [data-ref]')].find((n) => n.dataset.ref === s.ref);
      const group = [...document.querySelectorAll('.step-graph [data-members]')].find((n) => n.dataset.members.split(' ').includes(s.ref));
      const node = single ?? group;
      if (!node) return;
      const { status, text } = single ? { status: s.status, text: words(s.status) } : collapsedText(group);
      setStatusClass(node, status);
      node.classList.replace('unreached', 'reached');
      const label = node.querySelector('[data-status-text]');
      if (label) label.textContent = text;
    };

    const shown = document.querySelector('[data-run-status] .status')?.textContent;
    const runStatus = (status) => {
      const dd = document.querySelector('[data-run-status]');
      if (dd) dd.replaceChildren(statusSpan(status));
      // The buttons were chosen for the status the page was drawn with: say so rather than redraw under the pointer.
      const controls = document.querySelector('.run-controls');
      if (!controls || words(status) === shown || document.getElementById('run-changed')) return;
      const note = document.createElement('p');
      note.id = 'run-changed';
      note.className = 'notice';
      note.setAttribute('role', 'status');
      const link = document.createElement('a');
      link.href = location.pathname;
      link.textContent = 'The run changed since this page was drawn: reload for the controls that now apply';
      note.append(link);
      controls.append(note);
    };

    const source = new EventSource(`/console/runs/${encodeURIComponent(runId)}/events?after=${encodeURIComponent(section.dataset.after || '0')}`);
    source.addEventListener('open', () => say('Live: new lines appear as they are written.'));
    source.addEventListener('error', () => say('Connection lost; reconnecting…'));
    source.addEventListener('snapshot', (e) => {
      const snap = JSON.parse(e.data);
      for (const s of snap.steps) step(s);
      runStatus(snap.status);
      add(snap.lines);
    });
    source.addEventListener('log', (e) => add([JSON.parse(e.data)]));
    source.addEventListener('step', (e) => step(JSON.parse(e.data)));
    source.addEventListener('status', (e) => runStatus(JSON.parse(e.data).status));
    source.addEventListener('end', (e) => {
      const { status } = JSON.parse(e.data);
      source.close();
      runStatus(status);
      say(`The run has ended (${words(status)}); reload for its final state.`);
    });
    window.addEventListener('pagehide', () => source.close());
  }

  const runSection = document.querySelector('[data-live="run"]');
  if (runSection && !runSection.dataset.ended) followRun(runSection);
}
