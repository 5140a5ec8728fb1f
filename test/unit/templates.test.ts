import { ExpressionError } from '../../src/core/expressions/expressions.js';
import { mentionsCredentials, render, renderUrl, templateProblems } from '../../src/core/expressions/templates.js';

const ctx = {
  payload: { x: 2, name: 'abc', list: [1, 2, 3], obj: { a: 1, b: 'x' }, flag: true, nothing: null },
  item: 'domain-a',
};

describe('render', () => {
  test('a whole-string template keeps the number type', () => {
    const v = render('{{ payload.x + 1 }}', ctx);
    expect(v).toBe(3);
    expect(typeof v).toBe('number');
  });

  test('a whole-string template keeps a list', () => {
    expect(render('{{ payload.list }}', ctx)).toEqual([1, 2, 3]);
  });

  test('a whole-string template keeps an object', () => {
    expect(render('{{payload.obj}}', ctx)).toEqual({ a: 1, b: 'x' });
  });

  test('a whole-string template keeps booleans and null', () => {
    expect(render('{{ payload.flag }}', ctx)).toBe(true);
    expect(render('{{ payload.nothing }}', ctx)).toBeNull();
  });

  test('whitespace around the whole template is allowed inside the braces only', () => {
    expect(render('{{payload.x}}', ctx)).toBe(2);
    expect(render('{{   payload.x   }}', ctx)).toBe(2);
    // Text around the braces makes it an interpolation.
    expect(render(' {{ payload.x }}', ctx)).toBe(' 2');
  });

  test('text with a template interpolates as a string', () => {
    expect(render('n={{ payload.x + 1 }}', ctx)).toBe('n=3');
    expect(render('hello {{ payload.name }}!', ctx)).toBe('hello abc!');
  });

  test('two templates in one string interpolate both', () => {
    expect(render('{{ payload.x }} and {{ payload.name }}', ctx)).toBe('2 and abc');
  });

  test('lists and objects interpolate as JSON, null as empty text', () => {
    expect(render('l={{ payload.list }} o={{ payload.obj }} n=[{{ payload.nothing }}]', ctx)).toBe('l=[1,2,3] o={"a":1,"b":"x"} n=[]');
  });

  test('strings without templates are unchanged', () => {
    expect(render('plain text', ctx)).toBe('plain text');
    expect(render('', ctx)).toBe('');
    expect(render('{ not a template }', ctx)).toBe('{ not a template }');
  });

  test('non-string scalars are unchanged', () => {
    expect(render(42, ctx)).toBe(42);
    expect(render(true, ctx)).toBe(true);
    expect(render(null, ctx)).toBeNull();
    expect(render(undefined, ctx)).toBeUndefined();
  });

  test('nested objects and arrays are rendered recursively', () => {
    const input = {
      url: 'https://example.com/{{ payload.name }}',
      body: { count: '{{ payload.x * 10 }}', items: ['{{ item }}', '{{ payload.list }}', 7, null, false], deep: { obj: '{{ payload.obj }}' } },
    };
    expect(render(input, ctx)).toEqual({
      url: 'https://example.com/abc',
      body: { count: 20, items: ['domain-a', [1, 2, 3], 7, null, false], deep: { obj: { a: 1, b: 'x' } } },
    });
  });

  test('the input value is not modified', () => {
    const input = { a: ['{{ payload.x }}'], b: '{{ payload.name }}' };
    render(input, ctx);
    expect(input).toEqual({ a: ['{{ payload.x }}'], b: '{{ payload.name }}' });
  });

  test('an expression error propagates as ExpressionError', () => {
    expect(() => render('{{ payload.missing }}', ctx)).toThrow(ExpressionError);
    expect(() => render('x {{ payload.missing }}', ctx)).toThrow(ExpressionError);
    expect(() => render({ deep: ['{{ 1 + }}'] }, ctx)).toThrow(ExpressionError);
  });
});

describe('renderUrl', () => {
  const url = { credentials: { POOL_API: 'https://pool.example/api/v2', ACCESS_API: 'https://access.example' }, payload: { poolTag: '../admin?x', q: 'a&b=c#d', path: '/status/500', n: 7, dot: '..', name: 'x y' } };

  test('a payload value stays inside its path segment', () => {
    expect(renderUrl('{{ credentials.POOL_API }}/pools/{{ payload.poolTag }}', url)).toBe('https://pool.example/api/v2/pools/..%2Fadmin%3Fx');
    expect(new URL(renderUrl('{{ credentials.POOL_API }}/pools/{{ payload.poolTag }}', url) as string).pathname).toBe('/api/v2/pools/..%2Fadmin%3Fx');
  });

  test('the template at the very start is the base and is inserted as it is', () => {
    expect(renderUrl('{{ credentials.ACCESS_API }}/grant', url)).toBe('https://access.example/grant');
    expect(renderUrl('{{ credentials.POOL_API }}', url)).toBe('https://pool.example/api/v2');
  });

  test('values in the query, or after literal text, are percent-encoded', () => {
    expect(renderUrl('https://x.example/search?q={{ payload.q }}&n={{ payload.n }}', url)).toBe('https://x.example/search?q=a%26b%3Dc%23d&n=7');
    expect(renderUrl('https://x.example/{{ payload.name }}', url)).toBe('https://x.example/x%20y');
    // Only the first template can be the base.
    expect(renderUrl('{{ credentials.ACCESS_API }}{{ payload.path }}', url)).toBe('https://access.example%2Fstatus%2F500');
  });

  test('raw() opts a value out of the encoding', () => {
    expect(renderUrl('{{ credentials.ACCESS_API }}{{ raw(payload.path) }}', url)).toBe('https://access.example/status/500');
    expect(renderUrl('https://x.example/?{{ raw( "a=1&b=" + payload.name ) }}', url)).toBe('https://x.example/?a=1&b=x y');
  });

  test('"." and ".." are refused: no encoding keeps them from being path steps', () => {
    expect(() => renderUrl('{{ credentials.POOL_API }}/pools/{{ payload.dot }}', url)).toThrow(ExpressionError);
    expect(() => renderUrl('{{ credentials.POOL_API }}/pools/{{ payload.dot }}', url)).toThrow('the value ".." cannot be placed in a URL: it would change the path');
    expect(renderUrl('https://x.example/{{ payload.dot + "." }}', url)).toBe('https://x.example/...');
  });

  test('outside URLs values are not encoded, and raw() changes nothing', () => {
    expect(render('{{ credentials.ACCESS_API }}/pools/{{ payload.poolTag }}', url)).toBe('https://access.example/pools/../admin?x');
    expect(render('{{ raw(payload.n) }}', url)).toBe(7);
    expect(render('n={{ raw(payload.n) }}', url)).toBe('n=7');
  });

  test('raw() must wrap the whole template', () => {
    expect(() => renderUrl('https://x.example/{{ raw(payload.n) + raw(payload.n) }}', url)).toThrow(ExpressionError);
  });
});

describe('templateProblems', () => {
  test('raw(expr) is checked like expr', () => {
    expect(templateProblems({ url: '{{ credentials.X }}{{ raw(payload.path) }}' })).toEqual([]);
    expect(templateProblems({ url: 'x{{ raw(1 +) }}' })).toHaveLength(1);
  });

  test('no problems for valid templates and plain values', () => {
    expect(templateProblems({ a: '{{ payload.x }}', b: ['x {{ size(payload.list) }}', 3], c: null, d: true })).toEqual([]);
    expect(templateProblems('no template')).toEqual([]);
    expect(templateProblems(undefined)).toEqual([]);
  });

  test('each invalid expression is reported with its path', () => {
    const problems = templateProblems({ a: ['ok {{ payload.x }}', 'bad {{ 1 + }}'], b: { c: '{{ ) }}' } }, ['steps', 0, 'with']);
    expect(problems).toHaveLength(2);
    expect(problems[0].path).toEqual(['steps', 0, 'with', 'a', 1]);
    expect(problems[0].message).toMatch(/^invalid expression "1 \+": /);
    expect(problems[1].path).toEqual(['steps', 0, 'with', 'b', 'c']);
    expect(problems[1].message).toMatch(/^invalid expression "\)": /);
  });

  test('a path defaults to empty', () => {
    const problems = templateProblems('{{ ( }}');
    expect(problems).toHaveLength(1);
    expect(problems[0].path).toEqual([]);
  });

  test('two bad templates in one string give two problems with the same path', () => {
    const problems = templateProblems({ m: '{{ ( }} and {{ 1 + }}' });
    expect(problems.map((p) => p.path)).toEqual([['m'], ['m']]);
  });
});

describe('mentionsCredentials', () => {
  test('finds credentials. anywhere in a value', () => {
    expect(mentionsCredentials('{{ credentials.TOKEN }}')).toBe(true);
    expect(mentionsCredentials({ headers: { authorization: 'Bearer {{ credentials.GH }}' } })).toBe(true);
    expect(mentionsCredentials(['a', ['{{ credentials.X }}']])).toBe(true);
  });

  test('is false for values that do not mention them', () => {
    expect(mentionsCredentials({ url: '{{ payload.url }}' })).toBe(false);
    expect(mentionsCredentials('payload.credentials')).toBe(false);
    expect(mentionsCredentials(undefined)).toBe(false);
    expect(mentionsCredentials(null)).toBe(false);
    expect(mentionsCredentials(42)).toBe(false);
  });
});
