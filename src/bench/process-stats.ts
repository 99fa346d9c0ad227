/**
 * @module process-stats
 * What the benchmarks read of a process they started, from /proc.
 */
import { readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** CPU time (user and system) a process has used so far, in seconds; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat; here counted after the command name
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}
