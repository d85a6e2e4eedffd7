/**
 * Pure helpers for building ClickHouse SQL: identifier and string quoting, reading a table's
 * PARTITION BY expression out of its engine text and validating the partition values system.parts
 * prints. No I/O here: everything is unit-tested in test/unit/clickhouseSql.test.ts.
 *
 * Everything in this file must work with ClickHouse 18.16 (the local stack's) and current releases.
 * 18.16 has no query parameters (`{name:Type}`), so string values are quoted here.
 */

/** A name accepted for a database or table: non-empty, no control characters, reasonably short. */
export function validateName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`${field} must be a non-empty string`);
  if (name.length > 200) throw new Error(`${field} is longer than 200 characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new Error(`${field} contains control characters`);
  return name;
}

/** `name` as a back-quoted identifier; backslash and backquote escaped (both servers read `\``). */
export function quoteIdentifier(name: string): string {
  validateName(name, 'identifier');
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/** `db`.`table` */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/** A single-quoted SQL string literal. */
export function quoteString(value: string): string {
  // eslint-disable-next-line no-control-regex
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\u0000/g, '\\0').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}'`;
}

/** Engines whose data ballast exports: the MergeTree family (plain, Replicated*, Shared*...). */
export function isMergeTreeFamily(engine: string): boolean {
  return /MergeTree$/.test(engine);
}

/** [major, minor] of a `version()` string such as "18.16.1" or "24.8.4.13". */
export function parseVersion(version: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(version.trim());
  if (!m) throw new Error(`cannot parse ClickHouse version ${JSON.stringify(version)}`);
  return [Number(m[1]), Number(m[2])];
}

// ---------------------------------------------------------------------------------------------
// A tiny scanner over ClickHouse SQL text: enough to find top-level keywords and split arguments
// while skipping string literals, quoted identifiers, comments and anything inside brackets.

/** Calls `visit` for every character index that is at depth 0 and outside quotes/comments. */
function scanTopLevel(text: string, visit: (i: number, depth: number) => boolean | void, from = 0): void {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      // Quoted: backslash escapes, and a doubled quote stands for itself.
      i++;
      while (i < text.length) {
        if (text[i] === '\\') i += 2;
        else if (text[i] === c) {
          if (text[i + 1] === c) i += 2;
          else break;
        } else i++;
      }
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') {
      if (visit(i, depth) === true) return;
      depth++;
      i++;
      continue;
    }
    if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth < 0) throw new Error(`unbalanced brackets in ${JSON.stringify(text)}`);
      if (visit(i, depth) === true) return;
      i++;
      continue;
    }
    if (visit(i, depth) === true) return;
    i++;
  }
  if (depth !== 0) throw new Error(`unbalanced brackets in ${JSON.stringify(text)}`);
}

/** Positions where one of `keywords` (regexes matching from the start, word-bounded) starts at depth 0. */
function findTopLevelKeyword(text: string, keywords: RegExp[], from = 0): { index: number; length: number } | undefined {
  let found: { index: number; length: number } | undefined;
  scanTopLevel(
    text,
    (i, depth) => {
      if (depth !== 0) return;
      if (i > 0 && /[A-Za-z0-9_]/.test(text[i - 1]!)) return;
      const rest = text.slice(i);
      for (const kw of keywords) {
        const m = kw.exec(rest);
        if (m && m.index === 0 && !/[A-Za-z0-9_]/.test(rest[m[0].length] ?? '')) {
          found = { index: i, length: m[0].length };
          return true;
        }
      }
    },
    from,
  );
  return found;
}

/** Splits `a, f(b, c), 'd,e'` at its top-level commas (trimmed). */
export function splitTopLevelArgs(text: string): string[] {
  if (text.trim() === '') return [];
  const args: string[] = [];
  let start = 0;
  scanTopLevel(text, (i, depth) => {
    if (depth === 0 && text[i] === ',') {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  });
  args.push(text.slice(start).trim());
  return args;
}

const CLAUSES_AFTER_PARTITION = [/^ORDER\s+BY/i, /^PRIMARY\s+KEY/i, /^SAMPLE\s+BY/i, /^TTL/i, /^SETTINGS/i, /^COMMENT/i];

/**
 * The engine part of a table definition: from `engine_full` ("MergeTree PARTITION BY ... ORDER BY ...")
 * as is, or from a CREATE query, what follows its top-level `ENGINE =`.
 */
export function engineClause(engineFullOrCreate: string): string {
  const at = findTopLevelKeyword(engineFullOrCreate, [/^ENGINE\s*=/i]);
  return at ? engineFullOrCreate.slice(at.index + at.length).trim() : engineFullOrCreate.trim();
}

/** The arguments of the engine call at the start of an engine clause, or undefined without parentheses. */
export function engineArguments(clause: string): string[] | undefined {
  const m = /^\s*[A-Za-z_][A-Za-z0-9_]*\s*\(/.exec(clause);
  if (!m) return undefined;
  const open = m[0].length - 1;
  let close = -1;
  scanTopLevel(
    clause,
    (i, depth) => {
      if (depth === 0 && clause[i] === ')') {
        close = i;
        return true;
      }
    },
    open,
  );
  if (close < 0) throw new Error(`unbalanced engine arguments in ${JSON.stringify(clause)}`);
  return splitTopLevelArgs(clause.slice(open + 1, close));
}

/**
 * The PARTITION BY expression of a MergeTree-family table, read from its engine text
 * (`engine_full`, or a CREATE TABLE query). Returns '' for an unpartitioned table.
 *
 * Needed on ClickHouse 18.16, whose system.tables has no `partition_key` column. Handles the
 * deprecated engine syntax too (`MergeTree(date, key, 8192)`, partitioned by month of `date`).
 */
export function partitionExpression(engine: string, engineFullOrCreate: string): string {
  const clause = engineClause(engineFullOrCreate);
  const at = findTopLevelKeyword(clause, [/^PARTITION\s+BY/i]);
  if (at) {
    const from = at.index + at.length;
    const end = findTopLevelKeyword(clause, CLAUSES_AFTER_PARTITION, from);
    const expr = clause.slice(from, end ? end.index : undefined).trim();
    if (!expr) throw new Error(`empty PARTITION BY in ${JSON.stringify(clause)}`);
    return expr;
  }
  // The old syntax: Engine([zk_path, replica,] date_column, [sampling,] primary_key, granularity[, ...]).
  const args = engineArguments(clause);
  if (args && !findTopLevelKeyword(clause, [/^ORDER\s+BY/i])) {
    const rest = engine.startsWith('Replicated') ? args.slice(2) : args;
    if (rest.length >= 3) return `toYYYYMM(${rest[0]})`;
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// Partition values, as system.parts' `partition` column prints them: SQL literals such as 202601,
// '2026-01-01', -3, 1.5, (202601, 'eu'), tuple(). Validated before being compared in a WHERE so
// that only literal text reaches the query.

/** True when `text` is one SQL literal: number, string, NULL, tuple or array of literals. */
export function isSqlLiteral(text: string): boolean {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const literal = (): boolean => {
    ws();
    const c = text[i];
    if (c === undefined) return false;
    if (c === "'") {
      i++;
      while (i < text.length) {
        if (text[i] === '\\') i += 2;
        else if (text[i] === "'") {
          if (text[i + 1] === "'") i += 2;
          else {
            i++;
            return true;
          }
        } else i++;
      }
      return false;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return c === '[';
      }
      for (;;) {
        if (!literal()) return false;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return true;
        }
        return false;
      }
    }
    const word = /^(?:tuple\(\s*\)|NULL|[-+]?(?:inf|nan)|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?0x[0-9A-Fa-f]+)/i.exec(text.slice(i));
    if (!word) return false;
    i += word[0].length;
    return true;
  };
  if (!literal()) return false;
  ws();
  return i === text.length;
}

/** The WHERE condition selecting one partition on a server without `_partition_id` (18.16). */
export function partitionCondition(expression: string, partition: string): string | undefined {
  if (!expression || partition === 'tuple()') return undefined;
  if (!isSqlLiteral(partition)) throw new Error(`unexpected partition value ${JSON.stringify(partition)}`);
  return `(${expression}) = ${partition}`;
}
