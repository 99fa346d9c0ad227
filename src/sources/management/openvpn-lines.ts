/**
 * @module management-openvpn-lines
 * The lines an operator adds to each OpenVPN server's config for management mode.
 */
import type { ManagementInstanceConfig } from '../../config/config-schema.ts';

export interface ManagementLinesOptions {
  /** Some plugin checks passwords: clients must then send a username and password. */
  readonly checksPasswords: boolean;
  /** The daemon's user, allowed to connect to a unix management socket. */
  readonly daemonUser?: string;
}

export function managementModeLines(instance: ManagementInstanceConfig, o: ManagementLinesOptions): string[] {
  const where = instance.socket ? `${instance.socket} unix` : `${instance.host ?? '127.0.0.1'} ${instance.port}`;
  const lines = [
    `# openvpn-flexscript, management mode, instance ${instance.name}.`,
    '# OpenVPN starts no process per client; the daemon answers every connect over this socket.',
    `management ${where}${instance['password-file'] ? ` ${instance['password-file']}` : ''}`,
    'management-client-auth',
  ];
  if (instance.socket && o.daemonUser) lines.push(`management-client-user ${o.daemonUser}`);
  if (!o.checksPasswords) {
    lines.push('# certificate-only clients: without this OpenVPN demands a username and password', 'auth-user-pass-optional');
  }
  return lines;
}
