/**
 * @module console-schema
 * The `console:` section of flexscript.yaml: where `flexscript console` listens, its TLS files,
 * the reverse proxies it believes, who may log in and where it writes its audit log. The daemon
 * ignores the section; `flexscript check` validates it with the rest.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from '../util/duration.ts';

const absolutePath = z.string().startsWith('/', 'must be an absolute path');

/** `HOST:PORT` or `[IPv6]:PORT`. */
const listenAddress = z.string().superRefine((s, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !(port >= 1 && port <= 65535)) ctx.addIssue({ code: 'custom', message: 'expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080' });
  else if (m[1] !== undefined && isIP(host) !== 6) ctx.addIssue({ code: 'custom', message: 'inside [ ] goes an IPv6 address' });
});

export const consoleConfigSchema = z
  .object({
    /** Where the console listens; loopback unless told otherwise. */
    listen: listenAddress.default('127.0.0.1:8080'),
    /** Serve HTTPS with this certificate and key (PEM files). */
    tls: z.object({ cert: absolutePath, key: absolutePath }).strict().optional(),
    /**
     * Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed:
     * the client address for the login limits and the audit log, https for Secure cookies.
     */
    'trusted-proxies': z.array(z.string().refine((a) => isIP(a) !== 0, 'not an IP address')).default([]),
    /** Who may log in. `users-file` today; a `web-login` provider may join it. */
    auth: z
      .object({
        /** `name:hash:role` lines (role viewer or operator), hashes as password-auth's (`flexscript passwd`). */
        'users-file': absolutePath,
      })
      .strict(),
    /** Every login, failed login and action, one JSON line each (created with mode 0640). */
    'audit-log': absolutePath,
    /** A login lasts this long without use. */
    'session-idle': duration.default(30 * 60_000),
  })
  .strict();

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;
