import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors } from 'jose';
import type { JwtSettings } from '../../config.js';

const ISSUER = 'flowgate';
const AUDIENCE = 'flowgate';
const encoder = new TextEncoder();

export interface SessionClaims {
  sub: string;
  username: string;
  role: string;
  jti: string;
  iat: number;
  exp: number;
}

/** Account JWTs: HS256 only, `iss`/`aud` flowgate; the previous secret verifies while rotating. */
export class JwtCodec {
  private readonly keys: Uint8Array[];

  constructor(private readonly settings: JwtSettings, private readonly now: () => number = Date.now) {
    this.keys = [settings.secret, ...(settings.previousSecret ? [settings.previousSecret] : [])].map((k) => encoder.encode(k));
  }

  async sign(account: { id: string; username: string; role: string }): Promise<{ token: string; jti: string; expiresAt: Date }> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.settings.ttlSeconds;
    const jti = randomUUID();
    const token = await new SignJWT({ username: account.username, role: account.role })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(account.id).setJti(jti).setIssuedAt(iat).setExpirationTime(exp)
      .sign(this.keys[0]);
    return { token, jti, expiresAt: new Date(exp * 1000) };
  }

  /** The claims of a valid token, or undefined (bad signature, other alg, expired, wrong issuer or audience, missing claims). */
  async verify(token: string): Promise<SessionClaims | undefined> {
    for (const key of this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'jti', 'iat', 'exp'],
          currentDate: new Date(this.now()),
        });
        if (typeof payload.username !== 'string' || typeof payload.role !== 'string') return undefined;
        return payload as unknown as SessionClaims;
      } catch (err) {
        // Only a signature made with another key is worth trying the next one.
        if (!(err instanceof errors.JWSSignatureVerificationFailed)) return undefined;
      }
    }
    return undefined;
  }
}

/** Whether a bearer has a JWT's shape (three base64url parts, a JSON header): Flowgate tokens do not. */
export const looksLikeJwt = (bearer: string): boolean => /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(bearer);
