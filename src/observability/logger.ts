import { pino, type Logger } from 'pino';

/** Structured JSON logs. Authorization headers and anything named like a secret are redacted. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'flowgate' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.token', '*.secret', '*.password', 'token', 'secret'],
      censor: '[redacted]',
    },
  });
}
