/**
 * What a page may reference, so that opening it makes no request to a host other than the one
 * serving it. Used by build-docs.mjs (the build fails) and by the test of this package.
 *
 * Two rules:
 * 1. Outside <script> (the markup and its CSS), nothing that a browser loads by itself may name
 *    another host: src, srcset, poster, data, <link href>, <meta http-equiv=refresh>, CSS url()
 *    and @import must be relative or loopback. Plain <a href> links are followed only on a click.
 * 2. Inside scripts, every absolute URL's host must be loopback or one of INERT_HOSTS below: hosts
 *    that the bundled code only names (XML namespaces, links a person may click, URLs inside error
 *    messages), each reviewed. Any other host fails, so an upgrade of the renderer that starts
 *    loading something from a new host is caught here before a browser sees it.
 */

/** Host -> why naming it loads nothing. Reviewed against the Redoc bundle of @redocly/cli 2.77. */
export const INERT_HOSTS = new Map([
  ['www.w3.org', 'XML namespace identifiers of SVG/XLink/MathML, never fetched'],
  ['redocly.com', 'the "API docs by Redocly" attribution link and documentation links in messages'],
  ['github.com', 'links: the contract info.description, and error-message URLs of bundled libraries'],
  ['reactrouter.com', 'URL inside a react-router error message'],
  ['react.dev', 'URL inside a React error message'],
  ['en.wikipedia.org', 'link inside a GraphQL scalar description string'],
  ['commonmark.org', 'link inside a GraphQL directive description string'],
  ['yarnpkg.com', 'URL inside a bundled library error message'],
  ['chatgpt.com', '"ask an assistant" link opened only on a click'],
  ['claude.ai', '"ask an assistant" and "connect MCP" links opened only on a click'],
  ['example.com', 'RFC 2606 documentation example in the contract'],
  ['app.example.com', 'RFC 2606 documentation example in the contract'],
]);

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

function hostOf(url) {
  const match = /^(?:https?:)?\/\/([^/?#:"'`\\\s)]+)/i.exec(url);
  return match ? match[1].toLowerCase() : undefined;
}

const isLocal = (url) => {
  const host = hostOf(url);
  return host === undefined || LOOPBACK.test(host);
};

/**
 * Every reference of `html` that breaks the rules above, as `{ host, where, excerpt }`; an empty
 * list means the page loads nothing from elsewhere.
 */
export function externalReferences(html) {
  const problems = [];
  const scripts = [];
  const markup = html.replace(/<script\b[^>]*>([\s\S]*?)<\/script>/gi, (whole, body) => {
    scripts.push(body);
    // The script tag itself stays (its src attribute is markup).
    return whole.slice(0, whole.indexOf('>') + 1);
  });

  const loading = [
    /\s(?:src|poster|data|action|formaction|background)\s*=\s*["']?([^"'\s>]+)/gi,
    /\ssrcset\s*=\s*["']([^"']+)["']/gi,
    /<link\b[^>]*\shref\s*=\s*["']?([^"'\s>]+)/gi,
    /<meta\b[^>]*http-equiv\s*=\s*["']?refresh[^>]*content\s*=\s*["'][^"']*url=([^"'\s>]+)/gi,
    /url\(\s*["']?([^"')\s]+)/gi,
    /@import\s+["']([^"']+)["']/gi,
  ];
  for (const pattern of loading) {
    for (const match of markup.matchAll(pattern)) {
      for (const candidate of match[1].split(',').map((part) => part.trim().split(/\s+/)[0])) {
        if (!candidate || isLocal(candidate)) continue;
        problems.push({
          host: hostOf(candidate),
          where: 'markup',
          excerpt: markup.slice(Math.max(0, match.index - 40), match.index + 120),
        });
      }
    }
  }

  for (const script of scripts) {
    for (const match of script.matchAll(/(?:https?:)?\/\/[a-z0-9][a-z0-9.-]*\.[a-z]{2,}(?::\d+)?/gi)) {
      // `//` also starts a JavaScript comment: only URL-shaped hosts count, and a scheme-less one
      // only where a string starts (a quote or backtick before it).
      if (!match[0].includes(':')) {
        const before = script[match.index - 1];
        if (before !== '"' && before !== "'" && before !== '`') continue;
      }
      const host = hostOf(match[0]);
      if (!host || LOOPBACK.test(host) || INERT_HOSTS.has(host)) continue;
      problems.push({
        host,
        where: 'script',
        excerpt: script.slice(Math.max(0, match.index - 80), match.index + 80),
      });
    }
  }
  return problems;
}
