/**
 * A table backup's saved CREATE statement, checked before a restore runs it. It must be exactly
 * `CREATE TABLE <db>.<table> (<columns>) ENGINE = <a MergeTree-family engine> ...` for the table
 * it claims to be, as SHOW CREATE TABLE prints it on 18.16 and current releases, and nothing else:
 * no second statement, no table filled from a query or a table function (AS ...), no view, no
 * engine that reaches outside the server (URL, S3, MySQL, File, Distributed...), no setting whose
 * value is computed (a disk defined inline). Pure text work: unit-tested.
 */

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', a: '\x07', v: '\v' };

/**
 * Reads a quoted token (a 'string', `identifier` or "identifier") starting at `at`, as ClickHouse
 * does: a backslash escapes the next character, a doubled quote is one quote. Undefined when it
 * is not terminated.
 */
export function readQuoted(text: string, at: number): { value: string; end: number } | undefined {
  const quote = text[at];
  let value = '';
  let i = at + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) return undefined;
      value += ESCAPES[next] ?? next;
      i += 2;
    } else if (c === quote) {
      if (text[i + 1] !== quote) return { value, end: i + 1 };
      value += quote;
      i += 2;
    } else {
      value += c;
      i++;
    }
  }
  return undefined;
}

interface Token {
  kind: 'word' | 'identifier' | 'string' | 'number' | 'punct';
  /** The word, number or punctuation as written; the value of a quoted token. */
  text: string;
}

const PUNCTUATION = '(),.=+-*/%<>!?:;[]{}|';
const NUMBER = /^(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)/;
const WORD = /^[A-Za-z_][A-Za-z0-9_]*/;

/** The MergeTree family, and its Replicated variants: engines whose data stays in the server. */
const MERGE_TREE_FAMILY = /^(?:Replicated)?(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree$/;
const FAMILY_NAMES = 'MergeTree, ReplacingMergeTree, SummingMergeTree, AggregatingMergeTree, CollapsingMergeTree, VersionedCollapsingMergeTree, GraphiteMergeTree, or their Replicated* variants';

/** Words that name what a CREATE statement creates, to say what was found instead of a table. */
const CREATE_KIND_WORDS = new Set(['OR', 'REPLACE', 'TEMPORARY', 'MATERIALIZED', 'LIVE', 'WINDOW', 'VIEW', 'DICTIONARY', 'DATABASE', 'FUNCTION', 'TABLE', 'USER', 'ROLE']);

export class SavedSchemaProblem extends Error {}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const rest = sql.slice(i);
    if (/\s/.test(c)) {
      i++;
    } else if (rest.startsWith('--') || rest.startsWith('/*')) {
      // SHOW CREATE TABLE never writes one; text hidden in a comment is not worth reading.
      throw new SavedSchemaProblem(`it holds a comment at offset ${i}`);
    } else if (c === "'" || c === '`' || c === '"') {
      const quoted = readQuoted(sql, i);
      if (!quoted) throw new SavedSchemaProblem(`a quoted ${c === "'" ? 'string' : 'name'} at offset ${i} is not terminated`);
      tokens.push({ kind: c === "'" ? 'string' : 'identifier', text: quoted.value });
      i = quoted.end;
    } else if (NUMBER.test(rest)) {
      const text = NUMBER.exec(rest)![0];
      tokens.push({ kind: 'number', text });
      i += text.length;
    } else if (WORD.test(rest)) {
      const text = WORD.exec(rest)![0];
      tokens.push({ kind: 'word', text });
      i += text.length;
    } else if (PUNCTUATION.includes(c)) {
      tokens.push({ kind: 'punct', text: c });
      i++;
    } else {
      throw new SavedSchemaProblem(`it holds an unexpected character ${JSON.stringify(c)} at offset ${i}`);
    }
  }
  return tokens;
}

const isWord = (t: Token | undefined, word: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === word;
const isPunct = (t: Token | undefined, p: string): boolean => t?.kind === 'punct' && t.text === p;

function describe(t: Token | undefined): string {
  if (!t) return 'the end of the statement';
  if (t.kind === 'string') return `the string ${JSON.stringify(t.text.slice(0, 40))}`;
  if (t.kind === 'identifier') return `the name ${JSON.stringify(t.text.slice(0, 40))}`;
  return JSON.stringify(t.text);
}

/** The index just past the parenthesis that closes the one at `open`. */
function closing(tokens: Token[], open: number, what: string): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')') && --depth === 0) return i + 1;
  }
  throw new SavedSchemaProblem(`its ${what} is not closed`);
}

function refuseQuery(tokens: Token[], from: number, to: number, where: string): void {
  for (let i = from; i < to; i++) {
    if (isWord(tokens[i], 'SELECT')) throw new SavedSchemaProblem(`it has a query (SELECT) in its ${where}`);
  }
}

/**
 * The column list's elements, between `open` and `close` (its parentheses): a PROJECTION holds a
 * SELECT of the table's own rows; no other element may hold one.
 */
function checkColumns(tokens: Token[], open: number, close: number): void {
  let start = open + 1;
  let depth = 0;
  for (let i = open + 1; i <= close; i++) {
    const t = tokens[i];
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')')) depth--;
    if ((depth === 0 && isPunct(t, ',')) || depth < 0) {
      if (!isWord(tokens[start], 'PROJECTION')) refuseQuery(tokens, start, i, 'column list');
      start = i + 1;
    }
  }
}

/** `SETTINGS name = literal, ...`: a value computed by an expression (disk = disk(...)) is refused. */
function checkSettings(tokens: Token[], at: number): number {
  let i = at;
  for (;;) {
    const name = tokens[i];
    if (name?.kind !== 'word' || !isPunct(tokens[i + 1], '=')) {
      throw new SavedSchemaProblem(`its SETTINGS clause has ${describe(name)} where "name = value" was expected`);
    }
    i += 2;
    if (isPunct(tokens[i], '-') || isPunct(tokens[i], '+')) i++;
    const value = tokens[i];
    if (!value || value.kind === 'punct' || isPunct(tokens[i + 1], '(') || isPunct(tokens[i + 1], '.')) {
      throw new SavedSchemaProblem(`its setting ${name.text} is not set to a plain value (found ${describe(value)}${isPunct(tokens[i + 1], '(') ? '(...)' : ''})`);
    }
    i++;
    if (!isPunct(tokens[i], ',')) return i;
    i++;
  }
}

export interface SavedSchema {
  /** The engine's name, e.g. ReplicatedMergeTree. */
  engine: string;
}

/**
 * Checks the saved CREATE statement of `database`.`table`; throws a SavedSchemaProblem saying what
 * was found instead of what is allowed.
 */
export function checkSavedSchema(statement: string, database: string, table: string): SavedSchema {
  const tokens = tokenize(statement);
  const semicolon = tokens.findIndex((t) => isPunct(t, ';'));
  if (semicolon >= 0 && semicolon !== tokens.length - 1) {
    throw new SavedSchemaProblem(`it holds more than one statement (${describe(tokens[semicolon + 1])} follows a ";")`);
  }
  if (!isWord(tokens[0], 'CREATE')) throw new SavedSchemaProblem(`it starts with ${describe(tokens[0])}, not CREATE TABLE`);
  if (!isWord(tokens[1], 'TABLE')) {
    const kind = tokens
      .slice(1)
      .map((t) => (t.kind === 'word' ? t.text.toUpperCase() : ''))
      .filter((word, i, words) => words.slice(0, i + 1).every((w) => CREATE_KIND_WORDS.has(w)))
      .join(' ');
    throw new SavedSchemaProblem(`it is a CREATE ${kind || describe(tokens[1])} statement, not CREATE TABLE`);
  }
  let i = 2;
  if (isWord(tokens[i], 'IF') && isWord(tokens[i + 1], 'NOT') && isWord(tokens[i + 2], 'EXISTS')) i += 3;
  const [db, dot, name] = [tokens[i], tokens[i + 1], tokens[i + 2]];
  const isName = (t: Token | undefined) => t?.kind === 'word' || t?.kind === 'identifier';
  if (!isName(db) || !isPunct(dot, '.') || !isName(name)) {
    throw new SavedSchemaProblem(`it does not name its table as database.table (found ${describe(db)}${isPunct(dot, '.') ? `.${describe(name)}` : ''})`);
  }
  if (db!.text !== database || name!.text !== table) {
    throw new SavedSchemaProblem(`it creates ${JSON.stringify(db!.text)}.${JSON.stringify(name!.text)}, not ${database}.${table}`);
  }
  i += 3;

  if (isWord(tokens[i], 'AS')) throw new SavedSchemaProblem('it copies its structure or data from elsewhere (AS ... after the table name)');
  if (!isPunct(tokens[i], '(')) throw new SavedSchemaProblem(`its column list is missing: after the table name comes ${describe(tokens[i])}`);
  const columnsEnd = closing(tokens, i, 'column list');
  checkColumns(tokens, i, columnsEnd - 1);
  i = columnsEnd;

  if (!isWord(tokens[i], 'ENGINE')) throw new SavedSchemaProblem(`it has no ENGINE clause after its columns (found ${describe(tokens[i])})`);
  i++;
  if (isPunct(tokens[i], '=')) i++;
  const engine = tokens[i];
  if (engine?.kind !== 'word' || !MERGE_TREE_FAMILY.test(engine.text)) {
    throw new SavedSchemaProblem(`its engine is ${describe(engine)}, not of the MergeTree family (${FAMILY_NAMES})`);
  }
  i++;
  if (isPunct(tokens[i], '(')) {
    const argsEnd = closing(tokens, i, 'engine arguments');
    refuseQuery(tokens, i, argsEnd, 'engine arguments');
    i = argsEnd;
  }

  // The table's clauses (PARTITION BY, ORDER BY, PRIMARY KEY, SAMPLE BY, TTL, SETTINGS, COMMENT).
  let depth = 0;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (isWord(t, 'SELECT')) throw new SavedSchemaProblem('it holds a query (SELECT) after its engine');
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')') && --depth < 0) throw new SavedSchemaProblem('it closes a parenthesis it never opened');
    else if (depth === 0 && isWord(t, 'AS')) throw new SavedSchemaProblem('it fills the table from elsewhere (AS ... after the engine)');
    else if (depth === 0 && isWord(t, 'ENGINE')) throw new SavedSchemaProblem('it has a second ENGINE clause');
    else if (depth === 0 && isWord(t, 'SETTINGS')) {
      i = checkSettings(tokens, i + 1);
      continue;
    }
    i++;
  }
  if (depth !== 0) throw new SavedSchemaProblem('it leaves a parenthesis open');
  return { engine: engine.text };
}
