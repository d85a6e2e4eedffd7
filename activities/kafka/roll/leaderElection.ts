import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../../../contracts/config';
import { Failure } from '../../../contracts/failures';
import { electPreferredLeadersEverywhere, type ElectionOutcome } from '../protocolRequests';

export interface LeaderElectionResult {
  durationMs: number;
  /** Partitions whose leadership moved to the preferred replica. */
  elected: number;
  /** Partitions whose preferred replica already led ("no election needed"). */
  alreadyElected: number;
}

/** A preferred leader election on every partition whose preferred replica does not lead. */
export async function runPreferredLeaderElection(config: Config, toolTimeoutMs: number): Promise<LeaderElectionResult> {
  const started = Date.now();
  let outcome: ElectionOutcome;
  try {
    outcome = await electPreferredLeadersEverywhere(config.kafka.brokers, toolTimeoutMs);
  } catch (err) {
    throw ApplicationFailure.create({ message: `preferred leader election failed: ${(err as Error).message}`, type: Failure.LeaderElectionFailed });
  }
  if (outcome.failed.length) {
    const sample = outcome.failed.slice(0, 5).map((f) => `${f.topic}-${f.partition}: ${f.error}`).join('; ');
    throw ApplicationFailure.create({
      message: `preferred leader election failed for ${outcome.failed.length} partition(s), e.g. ${sample}`,
      type: Failure.LeaderElectionFailed,
    });
  }
  return { durationMs: Date.now() - started, elected: outcome.elected, alreadyElected: outcome.alreadyElected };
}
