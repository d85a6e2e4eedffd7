/**
 * Pause, resume and abort: the signals of a runbook that works through a list one item at a time
 * (the rolling restart, compaction). They take effect between items; nothing is cancelled
 * half-way. A signal that does not say who sent it (`by`) is ignored: every control is on record.
 */
import { defineSignal, setHandler } from '@temporalio/workflow';
import { z } from 'zod';

export interface ControlRequest {
  by: string;
  reason?: string;
}

export const pauseSignal = defineSignal<[ControlRequest]>('pause');
export const resumeSignal = defineSignal<[ControlRequest]>('resume');
export const abortSignal = defineSignal<[ControlRequest]>('abort');

const controlSchema = z.strictObject({ by: z.string().trim().min(1), reason: z.string().optional() });

export interface RunControls {
  readonly paused: boolean;
  /** Who aborted the run and why; undefined while it goes on. */
  readonly abortedBy: string | undefined;
  /** An abort the workflow decides itself (a rejected approval), unless a person's came first. */
  abort(reason: string): void;
}

/** Installs the three signal handlers; the returned object reads their current state. */
export function handleRunControls(): RunControls {
  let paused = false;
  let abortedBy: string | undefined;
  setHandler(pauseSignal, (who) => {
    if (controlSchema.safeParse(who).success) paused = true;
  });
  setHandler(resumeSignal, (who) => {
    if (controlSchema.safeParse(who).success) paused = false;
  });
  setHandler(abortSignal, (who) => {
    if (controlSchema.safeParse(who).success) abortedBy = `${who.by}${who.reason ? `: ${who.reason}` : ''}`;
  });
  return {
    get paused() {
      return paused;
    },
    get abortedBy() {
      return abortedBy;
    },
    abort(reason) {
      abortedBy ??= reason;
    },
  };
}
