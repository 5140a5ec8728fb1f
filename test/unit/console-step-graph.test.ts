import { renderToString } from 'preact-render-to-string';
import { COLLAPSE_OVER, groupSteps, layoutSteps, type GraphLayout, type GraphNode, type GraphStep } from '../../src/console/step-graph.js';
import { StepGraph } from '../../src/console/views/step-graph.js';

const step = (ref: string, dependsOn: string[] = [], kind = 'log', status = 'pending', reached = false): GraphStep => ({ ref, kind, dependsOn, status, reached });

/** `start`, n branches of `kind` after it, and a `join` after them all (the fan-out-50 fixture's shape). */
const fanOut = (n: number, kind = 'log'): GraphStep[] => {
  const branches = Array.from({ length: n }, (_, i) => step(`b${i + 1}`, ['start'], kind));
  return [step('start'), ...branches, step('join', branches.map((b) => b.ref))];
};

const nodeWith = (layout: GraphLayout, ref: string) => layout.nodes.find((n) => n.refs.includes(ref))!;
const overlap = (a: GraphNode, b: GraphNode) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

function expectNoOverlap(layout: GraphLayout) {
  for (let i = 0; i < layout.nodes.length; i++) {
    for (let j = i + 1; j < layout.nodes.length; j++) expect({ a: layout.nodes[i].id, b: layout.nodes[j].id, overlap: overlap(layout.nodes[i], layout.nodes[j]) }).toMatchObject({ overlap: false });
  }
  for (const n of layout.nodes) {
    expect(n.x).toBeGreaterThanOrEqual(0);
    expect(n.y).toBeGreaterThanOrEqual(0);
    expect(n.x + n.width).toBeLessThanOrEqual(layout.width);
    expect(n.y + n.height).toBeLessThanOrEqual(layout.height);
  }
}

describe('fan-out collapsing', () => {
  test(`more than ${COLLAPSE_OVER} siblings of one kind become one counted node`, () => {
    const layout = layoutSteps(fanOut(42));
    expect(layout.nodes.map((n) => n.label)).toEqual(['start', '42 × log', 'join']);
    const group = nodeWith(layout, 'b7');
    expect(group.refs).toHaveLength(42);
    expect(group.refs[0]).toBe('b1');
    expect(layout.edges.map((e) => [e.from, e.to])).toEqual([['step:start', group.id], [group.id, 'step:join']]);
  });

  test(`${COLLAPSE_OVER} siblings stay single nodes`, () => {
    const layout = layoutSteps(fanOut(COLLAPSE_OVER));
    expect(layout.nodes).toHaveLength(COLLAPSE_OVER + 2);
    expect(layout.nodes.every((n) => n.refs.length === 1)).toBe(true);
  });

  test('siblings of different kinds, or with different dependencies, are not merged', () => {
    const steps = [step('a'), step('b'), ...Array.from({ length: 15 }, (_, i) => step(`x${i}`, ['a'], 'log')), ...Array.from({ length: 15 }, (_, i) => step(`y${i}`, ['a'], 'http.request')),
      ...Array.from({ length: 15 }, (_, i) => step(`z${i}`, ['b'], 'log'))];
    expect(layoutSteps(steps).nodes.every((n) => n.refs.length === 1)).toBe(true);
  });

  test('a fan-out of fan-outs collapses at both levels (children grouped by their collapsed parent)', () => {
    const bs = Array.from({ length: 30 }, (_, i) => step(`b${i}`, ['start'], 'http.request'));
    const cs = Array.from({ length: 30 }, (_, i) => step(`c${i}`, [`b${i}`], 'log'));
    const { groups } = groupSteps([step('start'), ...bs, ...cs]);
    expect(groups.map((g) => g.length)).toEqual([1, 30, 30]);
  });

  test('a collapsed node shows how many of its steps stand where, the most pressing status first', () => {
    const steps = fanOut(25).map((s, i) => (s.ref.startsWith('b') ? { ...s, reached: i < 20, status: i < 3 ? 'failed' : i < 20 ? 'completed' : 'pending' } : s));
    const group = nodeWith(layoutSteps(steps), 'b1');
    expect(group.status).toBe('failed');
    expect(group.statusText).toBe('2 failed, 6 pending, 17 completed');
    expect(group.reached).toBe(true);
  });
});

describe('ordering and placement', () => {
  test('every step is right of the steps it depends on, and nothing overlaps', () => {
    const steps = [step('checkout'), step('build', ['checkout']), step('test', ['build']), step('lint', ['checkout']), step('deploy', ['test', 'lint'], 'approval'), step('announce', ['deploy'])];
    const layout = layoutSteps(steps);
    for (const s of steps) {
      for (const d of s.dependsOn) expect(nodeWith(layout, s.ref).x).toBeGreaterThan(nodeWith(layout, d).x + nodeWith(layout, d).width - 1);
    }
    expectNoOverlap(layout);
    expect(layout.edges).toHaveLength(6);
    for (const e of layout.edges) expect(e.points.length).toBeGreaterThanOrEqual(2);
  });

  test('a wide fan-out below the collapsing threshold does not overlap either', () => {
    expectNoOverlap(layoutSteps(fanOut(COLLAPSE_OVER)));
    expectNoOverlap(layoutSteps(fanOut(60)));
  });

  test('nodes keep the definition order, and the same steps always give the same picture', () => {
    const steps = [step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])];
    const one = layoutSteps(steps);
    expect(one.nodes.map((n) => n.refs[0])).toEqual(['a', 'b', 'c', 'd']);
    expect(layoutSteps(steps)).toEqual(one);
  });

  test('a compensation stands off the path, linked to the step it undoes by a dashed edge', () => {
    const layout = layoutSteps([step('grant'), step('hold', ['grant'], 'sleep'), { ...step('revoke', [], 'http.request'), compensates: 'grant' }]);
    expect(layout.edges).toContainEqual(expect.objectContaining({ from: 'step:grant', to: 'step:revoke', kind: 'compensates' }));
    expect(nodeWith(layout, 'revoke').compensation).toBe(true);
    expectNoOverlap(layout);
  });

  test('unknown dependencies (an external run record) are ignored; a long ref is cut in the picture', () => {
    const long = 'a_very_long_step_reference_that_goes_on_and_on';
    const layout = layoutSteps([step(long, ['missing'])]);
    expect(layout.nodes[0].label.length).toBeLessThanOrEqual(30);
    expect(layout.nodes[0].label.endsWith('…')).toBe(true);
    expect(layout.edges).toEqual([]);
  });
});

describe('the SVG', () => {
  test('is an image with a title and a label, its nodes link to the step rows, status is text and class, no inline style', () => {
    const steps = [step('start', [], 'log', 'completed', true), ...fanOut(30).slice(1, -1).map((s) => ({ ...s, status: 'running', reached: true })), step('join', ['b1'])];
    const html = renderToString(StepGraph({ layout: layoutSteps(steps), runId: 'r1' }));
    expect(html).toMatch(/<svg[^>]*role="group"[^>]*aria-label="Step graph of run r1: 32 steps in 3 nodes/);
    expect(html).toMatch(/<title>Step graph of run r1/);
    expect(html).toContain('href="#step-start"');
    expect(html).toMatch(/<a href="#step-start" class="node status-completed reached"/);
    expect(html).toContain('30 × log');
    expect(html).toMatch(/<a href="#step-join" class="node status-pending unreached"/);
    expect(html).toContain('>completed</text>');
    expect(html).not.toMatch(/style=/);
  });
});

describe('kept layouts', () => {
  test('a run shown again, its steps moved on, is placed exactly as before; what the caller changes stays its own', () => {
    const lanes = (status: string) => Array.from({ length: 6 }, (_, i) => step(`s${i}`, i ? [`s${i - 1}`] : [], 'log', status, status !== 'pending'));
    const before = layoutSteps(lanes('pending'));
    before.nodes[0].x = -999;
    before.edges[0].points[0].x = -999;
    const after = layoutSteps(lanes('completed'));
    expect(after.nodes.map((n) => n.status)).toEqual(Array(6).fill('completed'));
    expect(after.nodes[0].x).toBeGreaterThanOrEqual(0);
    expect(after.edges[0].points[0].x).toBeGreaterThanOrEqual(0);
    const fresh = layoutSteps(lanes('running'));
    expect(after.nodes.map(({ x, y }) => ({ x, y }))).toEqual(fresh.nodes.map(({ x, y }) => ({ x, y })));
    // Another shape is laid out on its own.
    const other = layoutSteps([step('a'), step('b', ['a']), step('c', ['a'])]);
    expect(other.nodes).toHaveLength(3);
    expectNoOverlap(other);
  });
});
