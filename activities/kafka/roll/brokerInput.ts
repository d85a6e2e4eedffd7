import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../../../contracts/config';
import { Failure } from '../../../contracts/failures';

export interface BrokerInput {
  brokerId: number;
}

export interface BrokerWaitInput {
  brokerId: number;
  /** Defaults to the config's roll timeout for this wait. */
  timeoutSeconds?: number;
}

export function brokerOf(config: Config, brokerId: number): Config['kafka']['brokers'][number] {
  const broker = config.kafka.brokers.find((b) => b.id === brokerId);
  if (!Number.isInteger(brokerId) || !broker) {
    throw ApplicationFailure.create({
      message: `brokerId: ${String(brokerId)} is not a configured Kafka broker (configured: ${config.kafka.brokers.map((b) => b.id).join(', ')})`,
      type: Failure.InvalidInput,
      nonRetryable: true,
    });
  }
  return broker;
}

export function timeoutInput(value: number | undefined, fallback: number, field: string): number {
  const t = value ?? fallback;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw ApplicationFailure.create({ message: `${field}: must be a positive number of seconds (got ${String(value)})`, type: Failure.InvalidInput, nonRetryable: true });
  }
  return t;
}
