import type { MikroORM } from '@mikro-orm/postgresql';
import { AuditLog, type Actor } from '../core/audit/audit-log.js';
import { presentToken, TokenService, type NewToken } from '../core/identity/tokens.js';
import { formatCreated, formatTokenTable } from './format.js';

const CLI_ACTOR: Actor = { name: 'cli', door: 'cli' };

/** The token commands; each returns the text to print on stdout. */
export class TokenCommands {
  private readonly tokens: TokenService;

  constructor(orm: MikroORM) {
    this.tokens = new TokenService(orm, new AuditLog(orm));
  }

  async create(input: NewToken): Promise<string> {
    const { token, secret } = await this.tokens.create(input, CLI_ACTOR);
    return formatCreated(presentToken(token), secret);
  }

  async list(): Promise<string> {
    return formatTokenTable((await this.tokens.list()).map(presentToken));
  }

  async revoke(id: string): Promise<string> {
    await this.tokens.delete(id, CLI_ACTOR);
    return `Token ${id} revoked.\n`;
  }
}
