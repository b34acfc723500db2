import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Knows which of a server's connections are carrying a request, so that a graceful stop can end
 * every other one at once.
 *
 * `server.closeIdleConnections()` is not enough on Node 20: a connection that was opened but has
 * not sent a request yet does not count as idle, and clients open such connections routinely
 * (undici opens a spare one when a request is aborted, browsers and load balancers pre-connect).
 * One of them held every shutdown for the full timeout.
 */
export class SocketTracker {
  /** Open sockets and how many requests each is serving right now. */
  readonly #active = new Map<Socket, number>();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.#active.set(socket, 0);
      socket.once('close', () => this.#active.delete(socket));
    });
  }

  /** Wraps the server's request listener so that each request is counted until its response closes. */
  track(listener: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.#active.set(socket, (this.#active.get(socket) ?? 0) + 1);
      res.once('close', () => {
        const count = this.#active.get(socket);
        if (count !== undefined) this.#active.set(socket, count - 1);
      });
      listener(req, res);
    };
  }

  /** Ends every connection that is not serving a request (keep-alive or never used). */
  closeIdle(): void {
    for (const [socket, requests] of this.#active) if (requests === 0) socket.destroy();
  }

  /** Requests being served right now. */
  get requests(): number {
    let total = 0;
    for (const count of this.#active.values()) total += count;
    return total;
  }
}
