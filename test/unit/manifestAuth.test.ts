import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { manifestAuthenticity, manifestKeyId, signManifest } from '../../activities/backup/manifestSignature';
import { checkManifest, ManifestRefusal, pieceKeyProblem, storedCopyProblem } from '../../activities/backup/manifestCheck';
import { configuredComponents, lacksOf, manifestCompleteness } from '../../activities/backup/completeness';
import type { BackupManifest, BackupPiece } from '../../contracts/backupTypes';

const KEY = 'a'.repeat(64);
const OTHER_KEY = 'b'.repeat(64);
const ID = '2026-11-22T02-00-00Z-ab12cd';

const piece = (component: BackupPiece['component'], name: string, key: string, extra: Partial<BackupPiece> = {}): BackupPiece => ({
  component,
  name,
  key,
  size: 100,
  sha256: 'c'.repeat(64),
  snapshotAt: '2026-11-22T02:00:01.000Z',
  startedAt: '2026-11-22T02:00:00.000Z',
  finishedAt: '2026-11-22T02:00:02.000Z',
  durationMs: 2000,
  ...extra,
});

function manifest(): BackupManifest {
  return {
    formatVersion: 1,
    backupId: ID,
    environment: 'production',
    workflowId: 'nightly',
    runId: 'run-1',
    startedAt: '2026-11-22T02:00:00.000Z',
    finishedAt: '2026-11-22T02:05:00.000Z',
    consistencyPoint: '2026-11-22T02:00:01.000Z',
    serverVersions: { postgres: '15.4', clickhouse: '18.16.1' },
    components: [{ component: 'postgres', pieces: 1, bytes: 100, rows: 5, messages: 0, durationMs: 2000, startedAt: '2026-11-22T02:00:00.000Z', finishedAt: '2026-11-22T02:00:02.000Z' }],
    skipped: [],
    previousBackupId: '2026-11-21T02-00-00Z-000001',
    totals: { pieces: 3, bytes: 300, rows: 15, messages: 0 },
    pieces: [
      piece('postgres', 'shop', `backups/${ID}/postgres/shop.dump`, { rows: 5, details: { format: 'custom', tableRows: { 'public.orders': 5 } } }),
      piece('clickhouse', 'analytics.events/schema', `backups/${ID}/clickhouse/analytics/events/schema.sql`, { details: { engine: 'MergeTree', dataExported: true } }),
      piece('objectStore', 'platform-data/listing', `backups/${ID}/objects/platform-data/listing.json`, { details: { bucket: 'platform-data', referencedFrom: null } }),
    ],
    complete: true,
    lacks: [],
  };
}

/** As manifest.json holds it: written pretty-printed, read back by JSON.parse. */
const stored = (m: object): Record<string, unknown> => JSON.parse(`${JSON.stringify(m, null, 2)}\n`) as Record<string, unknown>;
const signed = () => stored(signManifest(manifest(), KEY)) as unknown as BackupManifest & Record<string, unknown>;

describe('manifest signature', () => {
  it('verifies a manifest it signed, after the JSON round trip, and names the key by the first 8 hex of its sha256', () => {
    const m = signed();
    assert.deepEqual(m.signature, { algorithm: 'HMAC-SHA256', keyId: createHash('sha256').update(KEY).digest('hex').slice(0, 8), value: (m.signature as { value: string }).value });
    assert.match((m.signature as { value: string }).value, /^[0-9a-f]{64}$/);
    assert.deepEqual(manifestAuthenticity(m, [KEY]), { kind: 'signed', keyId: manifestKeyId(KEY) });
    // Key order is not part of what is signed: the same content in another order still verifies.
    const reordered = Object.fromEntries(Object.entries(m).reverse());
    assert.deepEqual(manifestAuthenticity(reordered, [KEY]), { kind: 'signed', keyId: manifestKeyId(KEY) });
  });

  it('refuses any change to any kind of field once signed', () => {
    const tampers: [string, (m: BackupManifest & Record<string, unknown>) => void][] = [
      ['a string (environment)', (m) => void (m.environment = 'staging')],
      ['the backup id', (m) => void (m.backupId = '2026-11-23T02-00-00Z-ab12cd')],
      ['a time (consistency point)', (m) => void (m.consistencyPoint = '2026-11-22T03:00:00.000Z')],
      ['a number (piece size)', (m) => void (m.pieces[0]!.size = 101)],
      ['one hex digit of a sha256', (m) => void (m.pieces[1]!.sha256 = `d${'c'.repeat(63)}`)],
      ['a piece key', (m) => void (m.pieces[0]!.key = `backups/${ID}/postgres/other.dump`)],
      ['a nested detail', (m) => void ((m.pieces[1]!.details as Record<string, unknown>).engine = 'URL')],
      ['a null inside details', (m) => void ((m.pieces[2]!.details as Record<string, unknown>).referencedFrom = '2020-01-01T00-00-00Z-000000')],
      ['a boolean (complete)', (m) => void (m.complete = false)],
      ['an array element dropped (a piece)', (m) => void m.pieces.pop()],
      ['an array reordered (pieces)', (m) => void m.pieces.reverse()],
      ['an array element added (lacks)', (m) => void m.lacks!.push({ component: 'kafka', reason: 'x' })],
      ['an optional field removed (previousBackupId)', (m) => void delete m.previousBackupId],
      ['a field added', (m) => void (m.note = 'hello')],
      ['a map entry (server version)', (m) => void (m.serverVersions.clickhouse = '26.9')],
      ['a number to a string', (m) => void ((m.totals as unknown as Record<string, unknown>).bytes = '300')],
    ];
    for (const [what, tamper] of tampers) {
      const m = signed();
      tamper(m);
      const verdict = manifestAuthenticity(m, [KEY]);
      assert.equal(verdict.kind, 'refused', what);
      assert.match(verdict.kind === 'refused' ? verdict.problem : '', /does not match its content: the manifest was changed after it was signed/, what);
    }
  });

  it('refuses a manifest signed with another key, naming both key ids, and accepts it once that key is a previous one', () => {
    const m = stored(signManifest(manifest(), OTHER_KEY));
    const verdict = manifestAuthenticity(m, [KEY]);
    assert.equal(verdict.kind, 'refused');
    assert.match(verdict.kind === 'refused' ? verdict.problem : '', new RegExp(`signed with another key \\(key id ${manifestKeyId(OTHER_KEY)}; this worker holds key id\\(s\\) ${manifestKeyId(KEY)}\\)`));
    assert.deepEqual(manifestAuthenticity(m, [KEY, OTHER_KEY]), { kind: 'signed', keyId: manifestKeyId(OTHER_KEY) });
  });

  it('refuses a signature a worker without a key cannot check, and malformed signatures', () => {
    assert.match(JSON.stringify(manifestAuthenticity(signed(), [])), /this worker has no backup.manifestKey/);
    const bad = (signature: unknown) => manifestAuthenticity({ ...signed(), signature }, [KEY]);
    assert.match(JSON.stringify(bad(null)), /not a signature object/);
    assert.match(JSON.stringify(bad({ algorithm: 'none', value: '' })), /only HMAC-SHA256 is accepted/);
    assert.match(JSON.stringify(bad({ algorithm: 'HMAC-SHA256', keyId: manifestKeyId(KEY), value: 'zz' })), /not 64 hex digits/);
    assert.deepEqual(manifestAuthenticity([], [KEY]), { kind: 'refused', problem: 'it is not a JSON object' });
  });

  it('calls a manifest without a signature field unsigned: whether that is enough is the caller\'s decision', () => {
    assert.deepEqual(manifestAuthenticity(stored(manifest()), [KEY]), { kind: 'unsigned' });
  });

  it('signing again replaces the signature instead of signing it', () => {
    const twice = signManifest(signManifest(manifest(), OTHER_KEY), KEY);
    assert.deepEqual(manifestAuthenticity(stored(twice), [KEY]), { kind: 'signed', keyId: manifestKeyId(KEY) });
  });
});

describe('manifest check before a restore', () => {
  const check = (raw: unknown, allowUnsigned = false, backupId = ID) => checkManifest(raw, { backupId, keys: [KEY], allowUnsigned });
  const refusal = (fn: () => unknown): ManifestRefusal => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ManifestRefusal, String(err));
      return err;
    }
    assert.fail('accepted');
  };

  it('accepts a signed manifest of this backup and says which key signed it', () => {
    const checked = check(signed());
    assert.equal(checked.keyId, manifestKeyId(KEY));
    assert.equal(checked.manifest.pieces.length, 3);
  });

  it('refuses an unsigned manifest unless asked to accept one, and then says it is unsigned', () => {
    const err = refusal(() => check(stored(manifest())));
    assert.equal(err.unsigned, true);
    assert.match(err.message, new RegExp(`^backup ${ID} is not authentic: its manifest.json is unsigned.*set allowUnsignedBackup`));
    const accepted = check(stored(manifest()), true);
    assert.equal(accepted.keyId, undefined);
  });

  it('never accepts a tampered signed manifest, even when unsigned ones are allowed', () => {
    const m = signed();
    m.pieces[0]!.sha256 = 'e'.repeat(64);
    const err = refusal(() => check(m, true));
    assert.equal(err.unsigned, false);
    assert.match(err.message, /changed after it was signed/);
    assert.match(refusal(() => check(stored(signManifest(manifest(), OTHER_KEY)), true)).message, /signed with another key/);
  });

  it("refuses a manifest that is another backup's, even signed", () => {
    const other = { ...manifest(), backupId: '2026-11-21T02-00-00Z-000001' };
    assert.match(refusal(() => check(stored(signManifest(other, KEY)))).message, /the manifest.json in its folder is backup "2026-11-21T02-00-00Z-000001"'s/);
  });

  it('refuses a piece whose key lies outside the backup folder, signed or not', () => {
    for (const key of [`backups/2026-11-21T02-00-00Z-000001/postgres/shop.dump`, 'elsewhere/shop.dump', `backups/${ID}/../2026-11-21T02-00-00Z-000001/x`, `backups/${ID}//x`, `backups/${ID}/./x`, `backups/${ID}/x\n`]) {
      const m = manifest();
      m.pieces[0]!.key = key;
      const message = refusal(() => check(stored(signManifest(m, KEY)))).message;
      assert.match(message, /piece postgres "shop": /, key);
      assert.match(refusal(() => check(stored(m), true)).message, /piece postgres "shop": /, key);
    }
    assert.equal(pieceKeyProblem(`backups/${ID}/clickhouse/analytics/events/202601.native`, ID), undefined);
  });

  it('refuses a malformed manifest, naming the field', () => {
    const m = manifest();
    (m.pieces[0] as unknown as Record<string, unknown>).size = -1;
    assert.match(refusal(() => check(stored(signManifest(m, KEY)))).message, /malformed at pieces\.0\.size/);
    const noPieces = manifest() as unknown as Record<string, unknown>;
    delete noPieces.pieces;
    assert.match(refusal(() => check(stored(noPieces), true)).message, /malformed at pieces/);
  });
});

describe('stored copies a bucket listing names', () => {
  const object = (storedAt: string, referencedFrom?: string) => ({ key: 'img/a.png', storedAt, referencedFrom });

  it("accepts this backup's copy and an earlier backup's referenced copy, where a backup keeps them", () => {
    assert.equal(storedCopyProblem(object(`backups/${ID}/objects/platform-data/data/img/a.png`), 'platform-data', ID), undefined);
    const earlier = '2026-11-01T02-00-00Z-000001';
    assert.equal(storedCopyProblem(object(`backups/${earlier}/objects/platform-data/data/img/a.png`, earlier), 'platform-data', ID), undefined);
  });

  it('refuses a copy anywhere else: another key, another bucket folder, an unnamed or newer backup, outside backups/', () => {
    const earlier = '2026-11-01T02-00-00Z-000001';
    assert.match(storedCopyProblem(object(`backups/${ID}/objects/platform-data/data/img/b.png`), 'platform-data', ID)!, /not at backups\/.*img\/a\.png/);
    assert.match(storedCopyProblem(object(`backups/${earlier}/objects/platform-data/data/img/a.png`), 'platform-data', ID)!, /not at/);
    assert.match(storedCopyProblem(object(`backups/${ID}/objects/other/data/img/a.png`), 'platform-data', ID)!, /not at/);
    assert.match(storedCopyProblem(object('secrets/a.png', earlier), 'platform-data', ID)!, /not at/);
    assert.match(storedCopyProblem(object('x', '../x'), 'platform-data', ID)!, /said to be in backup "\.\.\/x"/);
    assert.match(storedCopyProblem(object(`backups/2026-12-01T02-00-00Z-000001/objects/platform-data/data/img/a.png`, '2026-12-01T02-00-00Z-000001'), 'platform-data', ID)!, /not older than/);
    assert.match(storedCopyProblem({ key: '../../x', storedAt: `backups/${ID}/objects/platform-data/data/../../x` }, 'platform-data', ID)!, /"\.\." path segment/);
  });
});

describe('complete or partial', () => {
  const all = configuredComponents({ objectStore: { buckets: ['platform-data'] } } as never);

  it('counts the object store as configured only when it lists data buckets', () => {
    assert.deepEqual(all, ['postgres', 'clickhouse', 'kafka', 'objectStore']);
    assert.deepEqual(configuredComponents({ objectStore: { buckets: [] } } as never), ['postgres', 'clickhouse', 'kafka']);
  });

  it("takes a manifest's recorded word", () => {
    const lacks = [{ component: 'kafka' as const, reason: 'cluster under maintenance' }];
    assert.deepEqual(manifestCompleteness({ ...manifest(), complete: false, lacks }, all), { complete: false, lacks, recorded: true });
    assert.deepEqual(manifestCompleteness(manifest(), ['postgres']), { complete: true, lacks: [], recorded: true });
  });

  it('counts an older manifest complete only when it skipped nothing and holds every configured component', () => {
    const legacy = (m: BackupManifest) => ({ ...m, complete: undefined, lacks: undefined });
    const withKafka = manifest();
    withKafka.pieces.push(piece('kafka', 'metadata', `backups/${ID}/kafka/metadata.json`));
    assert.deepEqual(manifestCompleteness(legacy(withKafka), all), { complete: true, lacks: [], recorded: false });
    assert.deepEqual(manifestCompleteness(legacy(manifest()), all), { complete: false, lacks: [{ component: 'kafka', reason: 'the backup holds no piece of it' }], recorded: false });
    const skipped = { ...legacy(withKafka), skipped: [{ component: 'clickhouse' as const, reason: 'not requested in input.components' }] };
    assert.deepEqual(manifestCompleteness(skipped, all).lacks, [{ component: 'clickhouse', reason: 'not requested in input.components' }]);
  });

  it('a backup being written lacks what it skipped, then what its input narrowed', () => {
    const skipped = [{ component: 'kafka' as const, reason: 'down' }];
    assert.deepEqual(lacksOf(skipped, [{ component: 'postgres', reason: 'input.postgresDatabases left out billing' }, { component: 'kafka', reason: 'x' }]), [
      { component: 'kafka', reason: 'down' },
      { component: 'postgres', reason: 'input.postgresDatabases left out billing' },
    ]);
    assert.deepEqual(lacksOf([]), []);
  });
});
