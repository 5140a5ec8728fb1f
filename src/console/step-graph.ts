import dagre from '@dagrejs/dagre';

/** A step as the graph needs it: its definition's ref, kind and dependencies, and where it stands. */
export interface GraphStep {
  ref: string;
  kind: string;
  dependsOn: string[];
  /** The step's status; a step without a row has not been reached (`pending`). */
  status: string;
  /** Whether the engine has reached the step (it has a row): unreached steps are drawn grey. */
  reached: boolean;
  /** The step this one undoes (a compensation): drawn off the normal path, with a dashed edge. */
  compensates?: string;
}

export interface GraphNode {
  id: string;
  /** The steps the node stands for: one, or the siblings of a collapsed fan-out (definition order). */
  refs: string[];
  kind: string;
  /** `ref`, or `42 × log` for a collapsed fan-out. */
  label: string;
  /** The node's status word (a collapsed node: its most pressing member's). */
  status: string;
  /** The status as words: `running`, or `40 completed, 2 failed` for a collapsed node. */
  statusText: string;
  reached: boolean;
  compensation: boolean;
  /** Top-left corner and size, in SVG units. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: 'depends' | 'compensates';
  points: Array<{ x: number; y: number }>;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** More siblings than this (same kind, same dependencies) are drawn as one counted node: a big fan-out stays readable. */
export const COLLAPSE_OVER = 20;
export const NODE_HEIGHT = 44;
const CHAR_WIDTH = 7.2;
const MIN_WIDTH = 96;
const MAX_WIDTH = 240;
/** Labels longer than this are cut (the full ref is in the node's title and the step table). */
export const MAX_LABEL = 30;

/** Which status a collapsed node shows when its members differ: what needs attention first. */
const URGENCY = ['failed', 'running', 'waiting', 'suspended', 'pending', 'cancelled', 'timed_out', 'skipped', 'completed'];
const urgency = (s: string) => {
  const i = URGENCY.indexOf(s);
  return i < 0 ? URGENCY.length : i;
};

export const cut = (text: string, max = MAX_LABEL) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const widthOf = (...texts: string[]) => Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, Math.ceil(Math.max(...texts.map((t) => t.length)) * CHAR_WIDTH) + 24));

/**
 * Depth of each step (longest path from a root), over known dependencies only. Steps on a cycle
 * cannot occur (manifests are checked), but an external run's record is not: they get depth 0.
 */
function depths(steps: GraphStep[]): Map<string, number> {
  const byRef = new Map(steps.map((s) => [s.ref, s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (ref: string): number => {
    const known = depth.get(ref);
    if (known !== undefined) return known;
    if (visiting.has(ref)) return 0;
    visiting.add(ref);
    const s = byRef.get(ref)!;
    const d = Math.max(-1, ...s.dependsOn.filter((p) => byRef.has(p)).map(visit)) + 1;
    visiting.delete(ref);
    depth.set(ref, d);
    return d;
  };
  for (const s of steps) visit(s.ref);
  return depth;
}

/**
 * Groups the steps into graph nodes. Siblings — same kind and the same (already grouped)
 * dependencies — number more than `COLLAPSE_OVER` become one node; grouping level by level lets a
 * fan-out of fan-outs (b1..b50 each followed by c1..c50) collapse at both levels.
 */
export function groupSteps(steps: GraphStep[]): { groups: GraphStep[][]; nodeOf: Map<string, string> } {
  const depth = depths(steps);
  const byLevel = new Map<number, GraphStep[]>();
  for (const s of steps) {
    const d = depth.get(s.ref)!;
    byLevel.set(d, [...(byLevel.get(d) ?? []), s]);
  }
  const nodeOf = new Map<string, string>();
  const groups: GraphStep[][] = [];
  for (const level of [...byLevel.keys()].sort((a, b) => a - b)) {
    const siblings = new Map<string, GraphStep[]>();
    for (const s of byLevel.get(level)!) {
      // Compensations are never merged: each undoes a different step.
      const parents = [...new Set(s.dependsOn.filter((p) => nodeOf.has(p)).map((p) => nodeOf.get(p)!))].sort();
      const key = s.compensates ? `compensates:${s.ref}` : `${s.kind}\u0000${parents.join('\u0000')}`;
      siblings.set(key, [...(siblings.get(key) ?? []), s]);
    }
    for (const members of siblings.values()) {
      if (members.length > COLLAPSE_OVER) {
        const id = `group:${members[0].ref}`;
        for (const m of members) nodeOf.set(m.ref, id);
        groups.push(members);
      } else {
        for (const m of members) {
          nodeOf.set(m.ref, `step:${m.ref}`);
          groups.push([m]);
        }
      }
    }
  }
  // Definition order: dagre keeps insertion order where it has no reason to change it.
  const order = new Map(steps.map((s, i) => [s.ref, i]));
  groups.sort((a, b) => order.get(a[0].ref)! - order.get(b[0].ref)!);
  return { groups, nodeOf };
}

function statusSummary(members: GraphStep[]): { status: string; text: string } {
  if (members.length === 1) return { status: members[0].status, text: members[0].status.replace(/_/g, ' ') };
  const counts = new Map<string, number>();
  for (const m of members) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  const ordered = [...counts.entries()].sort((a, b) => urgency(a[0]) - urgency(b[0]));
  return { status: ordered[0][0], text: ordered.map(([s, n]) => `${n} ${s.replace(/_/g, ' ')}`).join(', ') };
}

/**
 * Lays out a run's steps left to right (dependencies before dependents) with dagre. Pure: the
 * same steps always give the same picture, so it is tested without a browser.
 */
export function layoutSteps(steps: GraphStep[]): GraphLayout {
  const { groups, nodeOf } = groupSteps(steps);
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 16, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const nodes: GraphNode[] = groups.map((members) => {
    const first = members[0];
    const collapsed = members.length > 1;
    const label = collapsed ? `${members.length} × ${first.kind}` : cut(first.ref);
    const { status, text } = statusSummary(members);
    const node: GraphNode = {
      id: nodeOf.get(first.ref)!, refs: members.map((m) => m.ref), kind: first.kind, label, status, statusText: collapsed ? cut(text, 36) : text,
      reached: members.some((m) => m.reached), compensation: !!first.compensates, x: 0, y: 0, width: 0, height: NODE_HEIGHT,
    };
    node.width = widthOf(node.label, node.statusText);
    g.setNode(node.id, { width: node.width, height: node.height });
    return node;
  });
  const edges = new Map<string, Omit<GraphEdge, 'points'>>();
  for (const s of steps) {
    const to = nodeOf.get(s.ref)!;
    for (const p of s.dependsOn) {
      const from = nodeOf.get(p);
      if (from && from !== to) edges.set(`${from}\u0000${to}`, { from, to, kind: 'depends' });
    }
    const undone = s.compensates ? nodeOf.get(s.compensates) : undefined;
    if (undone && undone !== to && !edges.has(`${undone}\u0000${to}`)) edges.set(`${undone}\u0000${to}`, { from: undone, to, kind: 'compensates' });
  }
  // Where things go depends only on the nodes' ids and sizes and the edges, not on statuses: a
  // run's page asks for the same layout on every load and every step change, so it is kept.
  const key = `${nodes.map((n) => `${n.id}\u0001${n.width}`).join('\u0000')}\u0002${[...edges.keys()].join('\u0003')}`;
  let placed = placements.get(key);
  if (placed) {
    placements.delete(key);
  } else {
    for (const e of edges.values()) g.setEdge(e.from, e.to, { minlen: 1 });
    dagre.layout(g);
    const graph = g.graph();
    placed = {
      width: Math.ceil(graph.width ?? 0),
      height: Math.ceil(graph.height ?? 0),
      // dagre gives centres; SVG rectangles start at their top-left corner.
      nodes: nodes.map((n) => {
        const at = g.node(n.id);
        return { x: Math.round((at.x ?? 0) - n.width / 2), y: Math.round((at.y ?? 0) - n.height / 2) };
      }),
      points: [...edges.values()].map((e) => (g.edge(e.from, e.to)?.points ?? []).map((p: { x: number; y: number }) => ({ x: Math.round(p.x), y: Math.round(p.y) }))),
    };
    if (placements.size >= KEPT_LAYOUTS) placements.delete(placements.keys().next().value!);
  }
  placements.set(key, placed);
  nodes.forEach((n, i) => Object.assign(n, placed.nodes[i]));
  return {
    width: placed.width,
    height: placed.height,
    nodes,
    edges: [...edges.values()].map((e, i) => ({ ...e, points: placed.points[i].map((p) => ({ ...p })) })),
  };
}

interface Placement { width: number; height: number; nodes: Array<{ x: number; y: number }>; points: Array<Array<{ x: number; y: number }>> }
/** Layouts of recently shown graphs, least recently used first (a Map keeps insertion order). */
const placements = new Map<string, Placement>();
const KEPT_LAYOUTS = 200;
