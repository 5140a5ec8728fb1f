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
