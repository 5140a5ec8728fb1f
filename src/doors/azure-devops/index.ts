import type Router from '@koa/router';
import type { AzureDevOpsSettings } from '../../config.js';
import type { Services } from '../../container.js';
import { readBody } from '../../http/body.js';
import { toAppError } from '../../errors.js';
import type { Door } from '../door.js';
import { acceptDelivery, registerInboundHandler } from '../inbound.js';
import { AdoClient } from './client.js';
import { azureDevOpsDestination } from './destination.js';
import { basicAuthMatches, parseHook } from './hooks.js';
import { DOOR, processHook, setAzureDevOpsDeps } from './process.js';
import { organizationOf } from './work-items.js';

export const HOOK_PATH = '/azure-devops/hooks';

/** Settings that turn the door on (all four), named when it is off. */
export const AZURE_DEVOPS_VARIABLES = ['AZURE_DEVOPS_ORG_URL', 'AZURE_DEVOPS_TOKEN', 'AZURE_DEVOPS_HOOK_USERNAME', 'AZURE_DEVOPS_HOOK_PASSWORD'] as const;
export const AZURE_DEVOPS_OFF = `Azure DevOps (set ${AZURE_DEVOPS_VARIABLES.slice(0, -1).join(', ')} and ${AZURE_DEVOPS_VARIABLES.at(-1)} to turn it on)`;

/**
 * Azure DevOps: service hooks (work items created, updated, commented; pipeline runs) arrive at
 * `POST /azure-devops/hooks` with HTTP Basic credentials; each event is accepted once (by its
 * id) and processed durably after the answer, re-reading what it acts on through the API.
 * Runs whose callback is a work item comment on it.
 */
export function createAzureDevOpsDoor(s: Services, settings: AzureDevOpsSettings): Door {
  const client = AdoClient.for(settings);
  setAzureDevOpsDeps({ s, client, settings, org: organizationOf(settings.orgUrl) });
  registerInboundHandler(DOOR, processHook);
  return {
    name: DOOR,
    destination: azureDevOpsDestination(client, settings, s.approvals),
    mount(router: Router) {
      router.post(HOOK_PATH, async (ctx) => {
        if (!basicAuthMatches(ctx.get('authorization'), settings.hookUsername, settings.hookPassword)) {
          ctx.status = 401;
          ctx.set('www-authenticate', 'Basic realm="flowgate", charset="UTF-8"');
          ctx.body = { error: 'Authentication required: the service hook subscription must send the configured basic credentials' };
          return;
        }
        try {
          const { json } = await readBody(ctx);
          const parsed = parseHook(json);
          if ('invalid' in parsed) {
            ctx.status = 400;
            ctx.body = { error: `Not a service hook event: ${parsed.invalid}` };
            return;
          }
          if ('ignored' in parsed) {
            ctx.status = 200;
            ctx.body = { status: 'ignored', reason: parsed.ignored };
            return;
          }
          const outcome = await acceptDelivery(DOOR, parsed.id, parsed.event);
          ctx.status = outcome === 'accepted' ? 202 : 200;
          ctx.body = { status: outcome, id: parsed.id };
        } catch (err) {
          const e = toAppError(err);
          if (e.status >= 500) s.log.error({ err }, 'accepting an Azure DevOps service hook failed');
          ctx.status = e.status;
          ctx.body = { error: e.message };
        }
      });
    },
  };
}
