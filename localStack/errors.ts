/** A failure a person can act on; the CLI prints its message without a stack trace. */
export class StackError extends Error {
  override name = 'StackError';
}
