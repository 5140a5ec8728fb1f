/**
 * Azure DevOps work-item comments and HTML fields (System.Description) hold HTML. Commands are
 * read from the text a person sees; what Flowgate writes is escaped HTML.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', '#39': "'" };

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+|#39);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/**
 * The text of an HTML comment, one line per block (`<div>`, `<p>`, `<br>`, list items…).
 * Quoted content (`<blockquote>`) is dropped: quoting a command never issues it.
 */
export function htmlToText(html: string): string {
  let s = html.replace(/\r\n?/g, '\n');
  // Quotes can nest: remove innermost first until none is left.
  for (let i = 0; i < 10 && /<blockquote\b/i.test(s); i++) s = s.replace(/<blockquote\b[^>]*>(?:(?!<blockquote\b)[\s\S])*?<\/blockquote\s*>/gi, '\n');
  s = s.replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/?(div|p|li|ul|ol|pre|h[1-6]|tr|table|blockquote|section|article)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '');
  return decodeEntities(s)
    .split('\n')
    .map((l) => l.replace(/\u00a0/g, ' ').replace(/[ \t]+$/g, ''))
    .join('\n')
    .replace(/\n(?:[ \t]*\n)+/g, '\n')
    .trim();
}

/** Whether a field value looks like HTML rather than plain text. */
export const looksLikeHtml = (v: string) => /<\/?[a-z][^>]*>/i.test(v);
