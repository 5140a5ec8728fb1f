import { parseCsv, stringifyCsv } from '../../src/plugins/csv.js';

test('CSV round-trips quoted fields, doubled quotes, delimiters and line breaks', () => {
  const rows = [{ a: 'plain', b: 'has,comma' }, { a: 'say "hi"', b: 'two\nlines' }, { a: '', b: null }];
  const text = stringifyCsv(rows, ',', true);
  expect(text).toBe('a,b\r\nplain,"has,comma"\r\n"say ""hi""","two\nlines"\r\n,');
  expect(parseCsv(text, ',', true)).toEqual([{ a: 'plain', b: 'has,comma' }, { a: 'say "hi"', b: 'two\nlines' }, { a: '', b: '' }]);
  expect(parseCsv('x\ty\n1\t2\n', '\t', false)).toEqual([['x', 'y'], ['1', '2']]);
});

test('CSV mistakes are named', () => {
  expect(() => parseCsv('a,b\n"open,1\n', ',', true)).toThrow('a quoted field is not closed');
  expect(() => parseCsv('a,b\n1,2,3\n', ',', true)).toThrow('line 2 has 3 fields, the header 2');
  expect(() => stringifyCsv([[1, 2]], ',', true)).toThrow('row 0 is not an object (with a header, rows are objects)');
  expect(() => stringifyCsv([{ a: 1 }], ',', false)).toThrow('row 0 is not a list (without a header, rows are lists)');
  expect(parseCsv('', ',', true)).toEqual([]);
});
