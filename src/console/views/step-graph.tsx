import type { GraphEdge, GraphLayout, GraphNode } from '../step-graph.js';

const statusClass = (s: string) => `status-${s.replace(/[^a-z_]/g, '')}`;

/** An edge as an SVG path through dagre's points. */
const pathOf = (e: GraphEdge) => e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x} ${p.y}`).join(' ');

function Node({ n }: { n: GraphNode }) {
  const classes = ['node', statusClass(n.status), n.reached ? 'reached' : 'unreached', n.refs.length > 1 ? 'collapsed' : '', n.compensation ? 'compensation' : ''].filter(Boolean).join(' ');
  const full = n.refs.length > 1 ? `${n.refs.length} ${n.kind} steps (${n.refs[0]} … ${n.refs.at(-1)}): ${n.statusText}` : `${n.refs[0]} (${n.kind}): ${n.statusText}`;
  return (
    // Each node is a link to its row in the step table (the full view for keyboards and screen readers).
    <a href={`#step-${n.refs[0]}`} class={classes} data-node={n.id}
      data-ref={n.refs.length > 1 ? undefined : n.refs[0]} data-members={n.refs.length > 1 ? n.refs.join(' ') : undefined}>
      <title>{full}</title>
      <rect x={n.x} y={n.y} width={n.width} height={n.height} rx={6} ry={6} />
      <text x={n.x + 10} y={n.y + 18} class="node-label">{n.label}</text>
      <text x={n.x + 10} y={n.y + 35} class="node-status" data-status-text>{n.statusText}</text>
    </a>
  );
}

/**
 * The run's steps as an inline SVG (no inline styles: the CSP forbids them; colours come from
 * classes in console.css). A group of links, one per node, each naming its step and status; the
 * step table is the full accessible view.
 */
export function StepGraph({ layout, runId }: { layout: GraphLayout; runId: string }) {
  const steps = layout.nodes.reduce((n, x) => n + x.refs.length, 0);
  const summary = `Step graph of run ${runId}: ${steps} step${steps === 1 ? '' : 's'} in ${layout.nodes.length} node${layout.nodes.length === 1 ? '' : 's'}; the step table below lists each step.`;
  return (
    <div class="graph-scroll">
      <svg class="step-graph" xmlns="http://www.w3.org/2000/svg" role="group" aria-label={summary}
        viewBox={`0 0 ${Math.max(layout.width, 1)} ${Math.max(layout.height, 1)}`} width={layout.width} height={layout.height}>
        <title>{summary}</title>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head" />
          </marker>
        </defs>
        <g class="edges">
          {layout.edges.map((e) => <path d={pathOf(e)} class={`edge edge-${e.kind}`} marker-end="url(#arrow)" />)}
        </g>
        <g class="nodes">
          {layout.nodes.map((n) => <Node n={n} />)}
        </g>
      </svg>
    </div>
  );
}
