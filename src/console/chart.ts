/**
 * @module chart
 * A small bar chart as inline SVG, drawn on the server: no script, no library. Used for connects
 * and traffic per hour.
 */
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export interface Bar {
  readonly label: string;
  readonly value: number;
}

const W = 480;
const H = 120;

/** Bars over time, the largest filling the height; each bar's title shows its label and value. */
export function barChart(title: string, bars: readonly Bar[], unit: (n: number) => string): HtmlEscapedString | Promise<HtmlEscapedString> {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = W / Math.max(1, bars.length);
  return html`<figure class="chart">
    <figcaption>${title} (max ${unit(max)})</figcaption>
    <svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${title}">
      ${bars.map((b, i) => {
        const h = Math.round((b.value / max) * (H - 2));
        return html`<rect x="${(i * width + 1).toFixed(1)}" y="${H - h}" width="${Math.max(1, width - 2).toFixed(1)}" height="${h}" fill="#3a6ea5"><title>${b.label}: ${unit(b.value)}</title></rect>`;
      })}
      <line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" stroke="#888" />
    </svg>
  </figure>`;
}

/** Splits [start, end) into `n` equal buckets and sums `amountOf` of each item into the bucket of its time. */
export function buckets<T>(items: readonly T[], timeOf: (item: T) => number, amountOf: (item: T) => number, start: number, end: number, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  const size = (end - start) / n;
  for (const item of items) {
    const t = timeOf(item);
    if (t < start || t >= end) continue;
    const i = Math.min(n - 1, Math.floor((t - start) / size));
    out[i]! += amountOf(item);
  }
  return out;
}
