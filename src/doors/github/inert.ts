/**
 * Text that did not come from Flowgate (flow payloads, reasons, error messages, emails) made inert
 * before it goes into a comment the app posts: the app must not ping people or teams, reference
 * other issues, load images, render HTML or link to places of the text's choosing.
 *
 * Each construct is broken by a zero-width joiner placed where GitHub's markdown needs two
 * characters to touch (`@` and a name, `!` and `[`, `]` and `(`, `<` and a tag …). The text reads
 * the same, inside or outside code spans, so the caller need not know where the text lands; and
 * applying it twice changes nothing.
 */
const ZWJ = '\u200D';

const RULES: [RegExp, string][] = [
  // @user and @org/team mentions (an email's @ follows a word character and stays as it is).
  [/(?<![A-Za-z0-9_])@(?=[A-Za-z0-9])/g, `@${ZWJ}`],
  // Issue and pull request references: #12, owner/repo#12, GH-12 (each leaves a back-link there).
  [/#(?=\d)/g, `#${ZWJ}`],
  [/\b(GH)-(?=\d)/gi, `$1-${ZWJ}`],
  // Images and links: ![alt](src), [text](href), [text][ref] with a `[ref]: href` definition.
  [/!(?=\[)/g, `!${ZWJ}`],
  [/\](?=[(:])/g, `]${ZWJ}`],
  // Raw HTML (<img>, <picture>, <a href>, comments) and <scheme:…> autolinks: a `<` followed by
  // anything but a joiner starts none of them.
  [/<(?!\u200D)/g, `<${ZWJ}`],
  // Entities, so `&#64;team` does not become a mention once decoded.
  [/&(?=#?[A-Za-z0-9]+;)/g, `&${ZWJ}`],
  // Bare URLs GitHub would turn into links: scheme:// and www.
  [/([A-Za-z][A-Za-z0-9+.-]*):(?=\/\/)/g, `$1:${ZWJ}`],
  [/\b(www)\.(?=\S)/gi, `$1${ZWJ}.`],
];

export function inert(text: string): string {
  let out = text;
  for (const [re, by] of RULES) out = out.replace(re, by);
  return out;
}
