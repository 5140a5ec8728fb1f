import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** A WebSocket endpoint answered on the server's `upgrade` event. */
export interface UpgradeRoute {
  /** Whether this route answers the upgrade request (by its path). */
  matches(req: IncomingMessage): boolean;
  /** Answers it: a refusal as plain HTTP, or the upgrade. Never throws. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

const BODY_REFUSED = JSON.stringify({ error: 'A request asking to upgrade the connection cannot carry a body here', code: 'bad_request' });

/**
 * Routes `upgrade` requests: WebSocket requests to their route; anything else is answered by
 * `fallback` (the HTTP application) as an ordinary request, as Node would without this listener.
 */
export function routeUpgrades(server: Server, routes: UpgradeRoute[], fallback: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const websocket = req.headers.upgrade?.toLowerCase() === 'websocket';
    const target = websocket ? routes.find((r) => r.matches(req)) : undefined;
    if (target) return target.handle(req, socket, head);
    // The connection is the request's alone now: answered, then closed.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => {
      res.detachSocket(socket as Socket);
      socket.end();
    });
    // Its body would never be read: the HTTP parser has let go of the connection.
    if (req.headers['transfer-encoding'] || Number(req.headers['content-length'] ?? 0) > 0) {
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end(BODY_REFUSED);
      return;
    }
    fallback(req, res);
  });
}
