import type { S3Client } from '@aws-sdk/client-s3';
import { decodeMessageLine } from './backupFormat';
import { pieceLines } from './restorePieces';
import type { Plan, PlannedPiece, PlannedTopic } from './restoreRequest';

/** A data piece's captured range: its messages were read from [lowOffset, highOffset). */
export interface PieceRange {
  lowOffset: string;
  highOffset: string;
  messages: number;
}

export interface GroupOffsetInput {
  /** The committed offset in the backup. */
  savedOffset: string;
  /**
   * Set when the partition's messages were restored by this restore: the piece's range, and, for
   * a piece with offset gaps (transactions, compaction), how many backed-up messages have an
   * offset below savedOffset (needed only when savedOffset is inside the range).
   */
  data?: { range: PieceRange; messagesBelow?: number };
  /** The target partition's log range now (after the data was restored). */
  targetLow: string;
  targetHigh: string;
}

export interface GroupOffsetResult {
  /** The offset to commit. */
  offset: string;
  /** What translation asked for before clamping. */
  wanted: string;
  clamped: boolean;
}

/** Whether a piece's messages fill its range without gaps: offset = lowOffset + index. */
export function isGapFree(range: PieceRange): boolean {
  return BigInt(range.highOffset) - BigInt(range.lowOffset) === BigInt(range.messages);
}

/**
 * The index into the backup (0 = its first message) that a committed offset points at. Below
 * the range it is negative, past the end it is beyond the message count, so the clamp notices.
 */
export function backupIndex(range: PieceRange, savedOffset: bigint, messagesBelow?: number): bigint {
  const low = BigInt(range.lowOffset);
  const high = BigInt(range.highOffset);
  if (savedOffset <= low) return savedOffset - low;
  if (savedOffset >= high) return BigInt(range.messages) + (savedOffset - high);
  if (isGapFree(range)) return savedOffset - low;
  if (messagesBelow === undefined) throw new Error('backupIndex: a piece with offset gaps needs messagesBelow');
  return BigInt(messagesBelow);
}

/**
 * The offset a restored group commits: for a partition whose data this restore wrote, the same
 * position in the restored messages (savedOffset - savedLow + targetLow on a gap-free piece);
 * otherwise the saved offset itself. Either is clamped to the target's [low, high].
 */
export function restoredGroupOffset(input: GroupOffsetInput): GroupOffsetResult {
  const low = BigInt(input.targetLow);
  const high = BigInt(input.targetHigh);
  const saved = BigInt(input.savedOffset);
  const wanted = input.data ? low + backupIndex(input.data.range, saved, input.data.messagesBelow) : saved;
  const offset = wanted < low ? low : wanted > high ? high : wanted;
  return { offset: offset.toString(), wanted: wanted.toString(), clamped: offset !== wanted };
}

/** The note of a clamped offset. */
export function clampNote(group: string, topic: string, partition: number, savedOffset: string, r: GroupOffsetResult, low: string, high: string): string {
  const translated = r.wanted !== savedOffset ? ` (translated ${r.wanted})` : '';
  return `group ${group} topic ${topic} partition ${partition}: saved ${savedOffset}${translated}, clamped to ${r.offset} (log range ${low}..${high})`;
}

export function translate(
  topic: PlannedTopic,
  partition: number,
  savedOffset: string,
  restored: boolean,
  r: { low: string; high: string },
  below: Map<string, number>,
): GroupOffsetResult {
  const piece = restored ? topic.pieces.get(partition) : undefined;
  return restoredGroupOffset({
    savedOffset,
    data: piece ? { range: piece.range, messagesBelow: below.get(`${topic.source.name}/${partition}/${savedOffset}`) } : undefined,
    targetLow: r.low,
    targetHigh: r.high,
  });
}

/**
 * For committed offsets inside the range of a data piece with offset gaps, counts the backed-up
 * messages below each (streaming the piece). Keys: `${sourceTopic}/${partition}/${offset}`.
 */
export async function countBelowForGroups(
  s3: S3Client,
  bucket: string,
  plan: Pick<Plan, 'groups'>,
  restored: (t: PlannedTopic, partition: number) => boolean,
  signal: AbortSignal,
): Promise<Map<string, number>> {
  const wanted = new Map<string, { piece: PlannedPiece; topic: string; offsets: Set<bigint> }>();
  for (const g of plan.groups) {
    for (const o of g.offsets) {
      for (const p of o.partitions) {
        const piece = o.topic.pieces.get(p.partition);
        if (!piece || !restored(o.topic, p.partition) || isGapFree(piece.range)) continue;
        const saved = BigInt(p.offset);
        if (saved <= BigInt(piece.range.lowOffset) || saved >= BigInt(piece.range.highOffset)) continue;
        const key = `${o.topic.source.name}/${p.partition}`;
        const entry = wanted.get(key) ?? { piece, topic: o.topic.source.name, offsets: new Set<bigint>() };
        entry.offsets.add(saved);
        wanted.set(key, entry);
      }
    }
  }
  const counts = new Map<string, number>();
  for (const [key, entry] of wanted) {
    const offsets = [...entry.offsets];
    const below = new Map(offsets.map((o) => [o, 0]));
    for await (const line of pieceLines(s3, bucket, entry.piece.piece, signal, () => undefined)) {
      if (!line) continue;
      const offset = BigInt(decodeMessageLine(line).offset);
      for (const o of offsets) if (offset < o) below.set(o, below.get(o)! + 1);
    }
    for (const [o, n] of below) counts.set(`${key}/${o}`, n);
  }
  return counts;
}
