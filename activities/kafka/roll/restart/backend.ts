import type { Config } from '../../../../contracts/config';

export type KafkaRestartBackend = Config['kafka']['restart']['backend'];

export interface BrokerStopResult {
  backend: KafkaRestartBackend;
  /** What was done: the local process stopped, the pod deleted, or the whole restart command run. */
  action: 'processStopped' | 'podDeleted' | 'restartCommand';
  durationMs: number;
  /** The broker was seen absent from the cluster metadata while the stop ran: waitBrokerGone may be skipped. */
  goneObserved: boolean;
}

export interface BrokerStartResult {
  backend: KafkaRestartBackend;
  /** 'none' for the command backend: its command already brought the broker back up. */
  action: 'processStarted' | 'podReady' | 'none';
  durationMs: number;
}

/**
 * How one broker goes down and comes back. The workflow drives every backend the same way: stop,
 * wait until it is gone (unless stop saw it go), start, wait until it is back.
 */
export interface BrokerRestartBackend {
  /** Takes the broker down (the command backend: its one command restarts it as a whole). */
  stop(brokerId: number): Promise<BrokerStopResult['action']>;
  /** Brings it back up; 'none' when stop already did. */
  start(brokerId: number): Promise<BrokerStartResult['action']>;
}
