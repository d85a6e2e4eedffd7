/**
 * Kafka retention drift for compaction: each policy topic's effective retention.ms,
 * retention.bytes and cleanup.policy against maintenance.kafka.topics, and the fix (an approved,
 * destructive step: shorter retention deletes records).
 */
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import type { StepResult, TopicConfigChange, TopicConfigStep, TopicPlan } from '../../contracts/maintenanceTypes';
import type { ActivityDeps } from '../deps';
import { topicConfigOverrides } from './backupFormat';
import { withAdmin } from './topics';

type Policy = ActivityDeps['config']['maintenance']['kafka']['topics'][number];

/** The changes that bring `effective` in line with the policy. */
export function topicDrift(policy: Policy, effective: Record<string, string>): TopicConfigChange[] {
  const wanted: [TopicConfigChange['name'], string | undefined][] = [
    ['retention.ms', policy.retentionMs?.toString()],
    ['retention.bytes', policy.retentionBytes?.toString()],
    ['cleanup.policy', policy.cleanupPolicy],
  ];
  return wanted.filter(([name, to]) => to !== undefined && effective[name] !== to).map(([name, to]) => ({ name, from: effective[name], to: to! }));
}

const UNKNOWN_TOPIC_OR_PARTITION = 3;

/** Every effective config of one topic, and its own overrides; undefined when it does not exist. */
export async function describeTopic(admin: Admin, topic: string): Promise<{ effective: Record<string, string>; overrides: Record<string, string | null> } | undefined> {
  // kafkajs throws a resource's error instead of returning it: a missing topic arrives as UNKNOWN_TOPIC_OR_PARTITION.
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] }).catch((err: unknown) => {
    if ((err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return undefined;
    throw err;
  });
  const r = described?.resources[0];
  if (!r || r.errorCode === UNKNOWN_TOPIC_OR_PARTITION) return undefined;
  if (r.errorCode) throw new Error(`describeConfigs of topic ${topic} failed: ${r.errorMessage || `error ${r.errorCode}`}`);
  return { effective: Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue])), overrides: topicConfigOverrides(r.configEntries) };
}

export function createKafkaRetentionActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /** Each policy topic's drift from maintenance.kafka.topics. Read-only. */
    async planKafkaRetention(): Promise<TopicPlan[]> {
      const policies = config.maintenance.kafka.topics;
      if (!policies.length) return [];
      return withAdmin(connections.kafka(), async (admin) => {
        const plans: TopicPlan[] = [];
        for (const policy of policies) {
          const found = await describeTopic(admin, policy.topic);
          plans.push(found ? { topic: policy.topic, changes: topicDrift(policy, found.effective) } : { topic: policy.topic, changes: [], problem: 'the topic does not exist' });
        }
        return plans;
      });
    },

    /**
     * Sets the approved values. AlterConfigs replaces a topic's whole set of overrides, so the
     * topic's other overrides are sent along unchanged. Idempotent: a topic already in line is
     * left alone. Verified by reading the configs back.
     */
    async fixKafkaTopicConfig({ step }: { step: TopicConfigStep }): Promise<StepResult> {
      const started = Date.now();
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      return withAdmin(connections.kafka(), async (admin) => {
        const found = await describeTopic(admin, step.topic);
        if (!found) return { ...result, outcome: 'skipped', reason: 'the topic is gone' };
        const before = Object.fromEntries(step.changes.map((c) => [c.name, found.effective[c.name]]));
        const drifted = step.changes.filter((c) => found.effective[c.name] !== c.to);
        if (!drifted.length) return { ...result, outcome: 'already done', reason: 'the topic already has the policy values', before, after: before };
        const changedSinceApproval = drifted.filter((c) => found.effective[c.name] !== c.from);
        if (changedSinceApproval.length) {
          return { ...result, outcome: 'skipped', reason: `changed since the plan was approved: ${changedSinceApproval.map((c) => `${c.name} is ${found.effective[c.name]}, the plan saw ${c.from}`).join('; ')}`, before };
        }
        const entries = { ...Object.fromEntries(Object.entries(found.overrides).filter((e): e is [string, string] => e[1] !== null)), ...Object.fromEntries(step.changes.map((c) => [c.name, c.to])) };
        await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: step.topic, configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })) }] });
        // A config change reaches every broker through the metadata log, and a broker applies only
        // committed records: once one broker answers with the new values, every broker will.
        let after: Record<string, string | undefined> = {};
        let ok = false;
        for (const waitUntil = Date.now() + 30_000; !ok && Date.now() < waitUntil; ) {
          const now = await describeTopic(admin, step.topic);
          after = Object.fromEntries(step.changes.map((c) => [c.name, now?.effective[c.name]]));
          ok = step.changes.every((c) => after[c.name] === c.to);
          if (!ok) await new Promise((r) => setTimeout(r, 250));
        }
        const verified = step.changes.map((c) => `${c.name}: ${before[c.name]} -> ${after[c.name]}`).join('; ');
        return { ...result, outcome: ok ? 'done' : 'failed', reason: ok ? undefined : `verification failed: ${verified}`, before, after, verified, durationMs: Date.now() - started };
      });
    },
  };
}
