/**
 * A warning logger that says the same thing at most once per interval: while Redis is
 * down, every BullMQ worker reports every reconnect attempt (several a second), which
 * would bury the log; the first line and a periodic reminder are enough.
 */
export function throttledWarning(warn: (message: string) => void, intervalMs = 30_000): (message: string) => void {
  let last = 0;
  let suppressed = 0;
  return (message) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    warn(suppressed ? `${message} (${suppressed} similar messages suppressed)` : message);
    last = now;
    suppressed = 0;
  };
}
