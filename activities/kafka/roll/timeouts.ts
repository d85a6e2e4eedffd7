import { ApplicationFailure } from '@temporalio/activity';
import { Failure } from '../../../contracts/failures';

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

export function brokerTimeout(brokerId: number, waitingFor: string, timeoutSeconds: number, waitedMs: number, last?: string): ApplicationFailure {
  return ApplicationFailure.create({
    message: `broker ${brokerId}: waited ${seconds(waitedMs)} s for it ${waitingFor}; gave up at the ${timeoutSeconds} s timeout${last ? ` (last seen: ${last})` : ''}`,
    type: Failure.BrokerTimeout,
    nonRetryable: true,
    details: [{ brokerId, waitingFor, timeoutSeconds, waitedMs, last }],
  });
}

/** Resolves with the promise's outcome, or { timedOut } after `ms` (the promise keeps running). */
export async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<{ timedOut: false; value: T } | { timedOut: true }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ timedOut: true }>((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then((value) => ({ timedOut: false as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
