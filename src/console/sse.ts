import { PassThrough } from 'node:stream';
import type { Context } from 'koa';

/** Proxies close an idle stream; a comment line this often keeps it open and shows a dead client. */
const HEARTBEAT_MS = 15_000;

export interface EventStream {
  /** Sends one event; `id` is what a reconnecting browser sends back as `Last-Event-ID`. */
  send(event: string, data: unknown, id?: string | number): void;
  readonly closed: boolean;
  /** Called once, when the browser goes or the server stops. */
  onClose(fn: () => void): void;
  close(): void;
}

/**
 * The console's open Server-Sent Event streams. A server does not finish closing while they stay
 * open, so a stopping server ends them first (browsers reconnect, to another replica or later).
 */
export class EventStreams {
  private readonly open = new Set<EventStream>();

  get size(): number {
    return this.open.size;
  }

  /** Answers the request with an event stream. */
  start(ctx: Context): EventStream {
    const body = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.type = 'text/event-stream; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache, no-transform');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.set('Connection', 'keep-alive');
    ctx.body = body;
    const closers: Array<() => void> = [];
    let closed = false;
    const heartbeat = setInterval(() => body.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const stream: EventStream = {
      send: (event, data, id) => {
        if (closed) return;
        const lines = JSON.stringify(data).split('\n').map((l) => `data: ${l}`).join('\n');
        body.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\n${lines}\n\n`);
      },
      get closed() {
        return closed;
      },
      onClose: (fn) => { closers.push(fn); },
      close: () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        this.open.delete(stream);
        for (const fn of closers) fn();
        body.end();
      },
    };
    // Tell the browser how soon to come back after a server restart.
    body.write('retry: 2000\n\n');
    ctx.req.on('close', () => stream.close());
    this.open.add(stream);
    return stream;
  }

  closeAll(): void {
    for (const s of [...this.open]) s.close();
  }
}
