/** Option parsers and Ctrl-C handling shared by every `saelab` command. */
import { InvalidArgumentError } from 'commander';

/** A finite number, or an error naming the flag. */
export const num = (flag: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number, got '${v}'`);
  return n;
};

/** An integer, or an error naming the flag. */
export const int = (flag: string) => (v: string) => {
  const n = num(flag)(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer, got '${v}'`);
  return n;
};

/**
 * Runs `fn` with an AbortSignal that the first Ctrl-C raises (finish the current step, save state, stop — the next
 * run resumes); a second Ctrl-C quits at once.
 */
export async function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping after this step (Ctrl-C again to quit without saving)…\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
