/**
 * @module csv
 * CSV export (RFC 4180) that a spreadsheet cannot run: a cell that starts with `=`, `+`, `-`, `@`,
 * a tab or a carriage return gets a leading `'`, so a hostile common name stays text.
 */

/** One cell, quoted when it must be and defused when it starts like a formula. */
export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: readonly (string | number | undefined)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
