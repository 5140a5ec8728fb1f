import type { WebClient } from '@slack/web-api';
import type { Person } from '../../core/approvals/approval-rules.js';
import type { IdentityDirectory } from '../../core/identity/directory.js';

interface Profile { email?: string; name: string }

/**
 * Who a Slack user is, as an email: the identity directory's link when an administrator made
 * one, else the profile email from `users.info` (scope users:read.email). Profiles are cached.
 */
export class SlackPeople {
  private readonly cache = new Map<string, { profile: Profile; until: number }>();
  /** Lookups under way: clicks arriving together for one user share one `users.info` call. */
  private readonly inFlight = new Map<string, Promise<Profile | null>>();

  constructor(private readonly client: WebClient, private readonly identities: IdentityDirectory, private readonly ttlMs = 60 * 60 * 1000) {}

  async resolve(userId: string): Promise<Person | null> {
    const [linked, profile] = await Promise.all([this.identities.emailBySlack(userId), this.profile(userId)]);
    const email = linked ?? profile?.email;
    return email ? { email: email.toLowerCase(), name: profile?.name || email, as: `Slack user ${userId}, ${linked ? 'linked in Flowgate' : 'by its profile email'}` } : null;
  }

  /** Why a user could not be resolved, for the private reply. */
  static unknown(userId: string): string {
    return `I could not find an email for <@${userId}>: Flowgate needs the users:read.email scope, or an administrator can link you (PUT /api/v1/identities/{email} with slackUserId ${userId}).`;
  }

  private profile(userId: string): Promise<Profile | null> {
    const hit = this.cache.get(userId);
    if (hit && hit.until > Date.now()) return Promise.resolve(hit.profile);
    let pending = this.inFlight.get(userId);
    if (!pending) {
      pending = this.lookup(userId).finally(() => this.inFlight.delete(userId));
      this.inFlight.set(userId, pending);
    }
    return pending;
  }

  private async lookup(userId: string): Promise<Profile | null> {
    try {
      const res = await this.client.users.info({ user: userId });
      const u = res.user;
      const profile = { email: u?.profile?.email, name: u?.real_name || u?.profile?.real_name || u?.profile?.display_name || u?.name || '' };
      if (profile.email) this.cache.set(userId, { profile, until: Date.now() + this.ttlMs });
      return profile;
    } catch (err) {
      // No such user, or no scope: the directory may still know them. Anything else is real.
      if ((err as { code?: string }).code === 'slack_webapi_platform_error') return null;
      throw new Error(`looking up Slack user ${userId} (users.info): ${(err as Error).message}`);
    }
  }
}
