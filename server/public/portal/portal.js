// Admin Portal enhancements. Every page works without this file: it adds copy buttons and
// refreshes the live check in place (without it, the page reloads itself every 5 seconds).

document.addEventListener('DOMContentLoaded', () => {
  for (const button of document.querySelectorAll('button.copy[data-copy]')) {
    const field = document.getElementById(button.getAttribute('data-copy'));
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener('click', async () => {
      const details = field.closest('details');
      if (details) details.open = true;
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = 'Copied';
      } catch {
        field.select();
        button.textContent = 'Press Ctrl+C';
      }
      setTimeout(() => {
        button.textContent = 'Copy';
      }, 2000);
    });
  }

  const preview = document.getElementById('preview');
  if (preview) preview.focus();

  if (document.getElementById('live')) {
    const poll = async () => {
      try {
        const response = await fetch(window.location.pathname, { credentials: 'same-origin' });
        if (response.ok) {
          const next = new DOMParser().parseFromString(await response.text(), 'text/html');
          // The live section and the connection's state badge are what change.
          for (const id of ['live', 'state']) {
            const fresh = next.getElementById(id);
            const current = document.getElementById(id);
            if (fresh && current && fresh.outerHTML !== current.outerHTML) current.replaceWith(fresh);
          }
        }
      } catch {
        // Offline for a moment: try again on the next tick.
      }
      setTimeout(poll, document.hidden ? 10000 : 2000);
    };
    setTimeout(poll, 2000);
  }
});
