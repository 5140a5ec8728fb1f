import type Router from '@koa/router';
import type { Destination } from '../core/notify/destination.js';

/**
 * A way into Flowgate from where people work (Slack, GitHub, Azure DevOps). A door verifies
 * and parses what arrives, calls the core services, and talks back through its destination.
 * It holds no rules of its own.
 */
export interface Door {
  name: string;
  /** Registers its inbound endpoints; each verifies its requests before anything else happens. */
  mount(router: Router): void;
  /** Where runs whose callback is of this door's kind send their messages. */
  destination?: Destination;
  stop?(): Promise<void>;
}
