import { ApplicationFailure } from '@temporalio/workflow';
import { type z } from 'zod';
import { Failure } from '../contracts/failures';

/**
 * Validates a workflow's input at the edge. A bad input fails the run at once, non-retryably,
 * with a message naming each bad field, before any activity runs.
 */
export function parseInput<T extends z.ZodType>(workflow: string, schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = ['input', ...issue.path.map(String)].join('.');
    return `${field}: ${issue.message}`;
  });
  throw ApplicationFailure.nonRetryable(`${workflow}: invalid input: ${problems.join('; ')}`, Failure.InvalidInput, {
    problems,
  });
}
