import { ApplicationFailure } from '@temporalio/activity';
import { backOff, type BackoffOptions } from 'exponential-backoff';
import type { Admin } from 'kafkajs';

const RETRY_DELAYS: BackoffOptions = { startingDelay: 250, timeMultiple: 2, maxDelay: 1_250 };

/**
 * An admin client that is replaced after a failure. kafkajs puts every topic a client has looked
 * at into all its later metadata requests, so one topic deleted meanwhile (or a transient error)
 * would fail every later call of the same client; a fresh client starts clean.
 */
export class RenewableAdmin {
  private current?: Promise<Admin>;
  private generation = 0;
  private readonly opened: Admin[] = [];

  constructor(private readonly make: () => Admin) {}

  private handle(): { admin: Promise<Admin>; generation: number } {
    if (!this.current) {
      const admin = this.make();
      this.opened.push(admin);
      this.current = admin.connect().then(() => admin);
      this.current.catch(() => undefined);
    }
    return { admin: this.current, generation: this.generation };
  }

  private renew(generation: number): void {
    if (generation !== this.generation) return;
    this.generation += 1;
    this.current = undefined;
  }

  /** Runs `fn`, retrying on a fresh client after a failure. */
  async call<T>(fn: (admin: Admin) => Promise<T>, attempts = 4): Promise<T> {
    let generation = this.generation;
    return backOff(
      async () => {
        const handle = this.handle();
        generation = handle.generation;
        return fn(await handle.admin);
      },
      {
        ...RETRY_DELAYS,
        numOfAttempts: attempts,
        retry: (err, attempt) => {
          if (attempt >= attempts || err instanceof ApplicationFailure) return false;
          this.renew(generation);
          return true;
        },
      },
    );
  }

  /** Like call, but gives up with undefined as soon as `gone()` says the thing read no longer exists. */
  async callUnlessGone<T>(fn: (admin: Admin) => Promise<T>, gone: () => Promise<boolean>, attempts = 4): Promise<T | undefined> {
    let generation = this.generation;
    let isGone = false;
    try {
      return await backOff(
        async () => {
          const handle = this.handle();
          generation = handle.generation;
          return fn(await handle.admin);
        },
        {
          ...RETRY_DELAYS,
          numOfAttempts: attempts,
          retry: async () => {
            this.renew(generation);
            isGone = await gone();
            return !isGone;
          },
        },
      );
    } catch (err) {
      if (isGone) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.opened.map((a) => a.disconnect().catch(() => undefined)));
  }
}
