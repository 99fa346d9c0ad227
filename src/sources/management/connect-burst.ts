/**
 * @module connect-burst
 * Tells whether a client's connect came in a burst: another connect was still being answered,
 * or arrived less than BURST_WINDOW_MS before this answer. Under a burst (a reconnect storm, the
 * morning rush) `fast-push: auto` nudges OpenVPN so each client is served at once instead of at
 * its next timer; a lone connect is answered plainly, and its client sees no notice.
 */

/** Connects closer together than this count as one burst. */
export const BURST_WINDOW_MS = 1000;

export interface ConnectTicket {
  readonly arrived: number;
  /** When the connect before this one arrived (-Infinity for the first). */
  readonly previous: number;
}

export class ConnectBurst {
  #inFlight = 0;
  #lastArrival = -Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A connect arrived; hand the ticket back to `answered`. */
  arrived(): ConnectTicket {
    const ticket = { arrived: this.now(), previous: this.#lastArrival };
    this.#lastArrival = ticket.arrived;
    this.#inFlight++;
    return ticket;
  }

  /** The connect is being answered: was it part of a burst? */
  answered(ticket: ConnectTicket): boolean {
    const now = this.now();
    // the newest arrival that is not this connect
    const other = this.#lastArrival !== ticket.arrived ? this.#lastArrival : ticket.previous;
    const burst = this.#inFlight > 1 || now - other < BURST_WINDOW_MS;
    this.#inFlight--;
    return burst;
  }
}
