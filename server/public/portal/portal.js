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

  const live = document.getElementById('live');
  if (live) {
    const poll = async () => {
      try {
        const response = await fetch(window.location.pathname, {
          headers: { 'X-Portal-Fragment': 'live' },
          credentials: 'same-origin',
        });
        if (response.ok) {
          const html = await response.text();
          const next = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
          const current = document.getElementById('live');
          if (next && current && next.innerHTML !== current.innerHTML) {
            current.replaceWith(next);
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
