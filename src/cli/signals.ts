/**
 * Process signals, caught from the program's first moment and held until someone can act on
 * them. The listeners are added once and never removed: Node closes a signal's handle when its
 * last listener goes, and a signal already queued for that handle is then dropped, so swapping
 * an "early" listener for a "late" one loses a SIGTERM that arrives while start-up is busy.
 */

type StopSignal = 'SIGTERM' | 'SIGINT';

export interface SignalInbox {
  /**
   * Sets what a stop signal does. If one already arrived, `onStop` runs on the next turn of the
   * event loop; later stop signals while stopping are ignored (never the default action).
   */
  onStop(onStop: (signal: StopSignal) => void): void;
  /** Sets what SIGHUP does; SIGHUPs that arrived before are folded into one call. */
  onReload(onReload: () => void): void;
}

type SignalSource = Pick<NodeJS.Process, 'on'>;

export function catchSignals(source: SignalSource = process): SignalInbox {
  let stopRequested: StopSignal | null = null;
  let stopHandler: ((signal: StopSignal) => void) | null = null;
  let stopDelivered = false;
  let reloadHandler: (() => void) | null = null;
  let reloadPending = false;

  const deliverStop = () => {
    if (stopRequested === null || stopHandler === null || stopDelivered) return;
    stopDelivered = true;
    stopHandler(stopRequested);
  };
  const stop = (signal: StopSignal) => {
    stopRequested ??= signal;
    deliverStop();
  };
  source.on('SIGTERM', () => stop('SIGTERM'));
  source.on('SIGINT', () => stop('SIGINT'));
  source.on('SIGHUP', () => {
    if (reloadHandler) reloadHandler();
    else reloadPending = true;
  });

  return {
    onStop(handler) {
      stopHandler = handler;
      if (stopRequested !== null) setImmediate(deliverStop);
    },
    onReload(handler) {
      reloadHandler = handler;
      if (reloadPending) {
        reloadPending = false;
        setImmediate(handler);
      }
    },
  };
}
