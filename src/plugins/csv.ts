/**
 * CSV as RFC 4180 has it: fields quoted with `"` may hold the delimiter, line breaks and doubled
 * quotes; lines end with CRLF or LF. With a header, rows are objects keyed by its fields.
 */
export function parseCsv(text: string, delimiter: string, header: boolean): unknown[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) endField();
    else if (ch === '\n') endRow();
    else if (ch === '\r' && text[i + 1] === '\n') {
      endRow();
      i++;
    } else field += ch;
    i++;
  }
  if (quoted) throw new Error('a quoted field is not closed');
  if (field !== '' || row.length) endRow();
  if (!header) return rows;
  const [names, ...data] = rows;
  if (!names) return [];
  return data.map((r, n) => {
    if (r.length !== names.length) throw new Error(`line ${n + 2} has ${r.length} fields, the header ${names.length}`);
    return Object.fromEntries(names.map((name, k) => [name, r[k]]));
  });
}

/** Rows (objects, or lists without a header) as CSV text, quoting where needed, lines ending in CRLF. */
export function stringifyCsv(rows: unknown[], delimiter: string, header: boolean): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /["\r\n]/.test(s) || s.includes(delimiter) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const line = (cells: unknown[]) => cells.map(cell).join(delimiter);
  if (!header) {
    return rows.map((r, n) => {
      if (!Array.isArray(r)) throw new Error(`row ${n} is not a list (without a header, rows are lists)`);
      return line(r);
    }).join('\r\n');
  }
  const names: string[] = [];
  rows.forEach((r, n) => {
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`row ${n} is not an object (with a header, rows are objects)`);
    for (const k of Object.keys(r)) if (!names.includes(k)) names.push(k);
  });
  return [line(names), ...rows.map((r) => line(names.map((k) => (r as Record<string, unknown>)[k])))].join('\r\n');
}
