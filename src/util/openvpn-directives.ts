/**
 * @module directives
 * Reads an OpenVPN config file into its directives, as OpenVPN's parser splits them: words,
 * double quotes with backslash escapes, single quotes, `#` and `;` comments, a leading `--`,
 * and inline blocks such as `<ca>...</ca>` skipped. `config` includes are not followed.
 */

export interface OpenVpnDirective {
  readonly name: string;
  readonly args: readonly string[];
  readonly line: number;
}

/** Splits one OpenVPN config line into words: double quotes (with backslash escapes) and single quotes group. */
function words(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word = `${word ?? ''}${line[++i]}`;
      else word = `${word ?? ''}${c}`;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if ((c === '#' || c === ';') && word === undefined) {
      break;
    } else {
      word = (word ?? '') + (c === '\\' && i + 1 < line.length ? line[++i] : c);
    }
  }
  if (word !== undefined) out.push(word);
  return out;
}

/** The directives of an OpenVPN config (inline `<ca>...</ca>` blocks skipped). */
export function parseOpenVpnConfig(text: string): OpenVpnDirective[] {
  const out: OpenVpnDirective[] = [];
  let inline: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (inline) {
      if (line === `</${inline}>`) inline = undefined;
      return;
    }
    const block = /^<([a-z-]+)>$/.exec(line);
    if (block) {
      inline = block[1];
      return;
    }
    const [name, ...args] = words(line);
    if (name) out.push({ name: name.replace(/^--/, ''), args, line: i + 1 });
  });
  return out;
}
