import { invalidFilter, invalidPath, type ScimError } from '../protocol/error.js';
import {
  type AttrPath,
  COMPARE_OPS,
  type CompareOp,
  type Filter,
  type FilterValue,
  type PatchPath,
} from './ast.js';

/**
 * Recursive-descent parser for the SCIM filter grammar (RFC 7644 §3.4.2.2) and PATCH paths
 * (§3.5.2). Precedence, highest first: grouping and `[]`, `not`, `and`, `or`. Operators and
 * keywords are case-insensitive (`Eq`, `AND`). Tolerated beyond the ABNF because real IdPs send
 * them:
 * - `emails[type eq "work"].value eq "x"` (Entra's matching attribute), read as
 *   `emails[type eq "work" and value eq "x"]`;
 * - bare-word values (`displayName eq Group1`, Microsoft's Postman suite), read as strings.
 * Anything else that does not parse is a 400 `invalidFilter` naming the position.
 */

export const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 64;

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: '(' | ')' | '[' | ']'; at: number }
  | { kind: 'end'; at: number };

const PUNCTUATION = new Set(['(', ')', '[', ']']);

function tokenize(input: string, fail: (detail: string) => ScimError): Token[] {
  // PostgreSQL text cannot hold NUL: refused here rather than failing the query.
  if (input.includes('\0')) throw fail('NUL characters are not allowed');
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (PUNCTUATION.has(ch)) {
      tokens.push({ kind: ch as '(' | ')' | '[' | ']', at: i });
      i++;
      continue;
    }
    if (ch === '"') {
      const start = i;
      i++;
      let raw = '"';
      for (;;) {
        if (i >= input.length) throw fail(`unterminated string starting at position ${start + 1}`);
        const c = input[i]!;
        if (c === '\\') {
          raw += c + (input[i + 1] ?? '');
          i += 2;
          continue;
        }
        raw += c;
        i++;
        if (c === '"') break;
      }
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        throw fail(`invalid escape in the string at position ${start + 1}`);
      }
      if ((value as string).includes('\0'))
        throw fail(`NUL character in the string at position ${start + 1}`);
      tokens.push({ kind: 'string', value: value as string, at: start });
      continue;
    }
    const start = i;
    while (i < input.length && !/[\s()[\]"]/.test(input[i]!)) i++;
    tokens.push({ kind: 'word', text: input.slice(start, i), at: start });
  }
  tokens.push({ kind: 'end', at: input.length });
  return tokens;
}

const ATTR_NAME = /^[A-Za-z$][\w$-]*$/;
const URN_PREFIX = /^urn:/i;

/** Splits `urn:…:User:name.givenName` / `name.givenName` / `members` into an {@link AttrPath}. */
export function parseAttrPath(text: string, fail: (detail: string) => ScimError): AttrPath {
  if (text.includes('\0')) throw fail('NUL characters are not allowed in an attribute path');
  let uri: string | undefined;
  let rest = text;
  if (URN_PREFIX.test(text)) {
    const colon = text.lastIndexOf(':');
    uri = text.slice(0, colon);
    rest = text.slice(colon + 1);
    if (!uri || !rest) throw fail(`"${text}" is not a valid attribute path`);
  }
  const parts = rest.split('.');
  if (parts.length > 2 || !parts.every((part) => ATTR_NAME.test(part))) {
    throw fail(`"${text}" is not a valid attribute path`);
  }
  const path: AttrPath = { attr: parts[0]! };
  if (uri) path.uri = uri;
  if (parts[1]) path.sub = parts[1];
  return path;
}

class Parser {
  readonly #tokens: Token[];
  readonly #fail: (detail: string) => ScimError;
  #pos = 0;
  #depth = 0;

  constructor(tokens: Token[], fail: (detail: string) => ScimError) {
    this.#tokens = tokens;
    this.#fail = fail;
  }

  get #peek(): Token {
    return this.#tokens[this.#pos]!;
  }

  #next(): Token {
    const token = this.#tokens[this.#pos]!;
    if (token.kind !== 'end') this.#pos++;
    return token;
  }

  #keyword(token: Token): string | undefined {
    return token.kind === 'word' ? token.text.toLowerCase() : undefined;
  }

  #describe(token: Token): string {
    if (token.kind === 'end') return 'the end of the filter';
    if (token.kind === 'word') return `"${token.text}" at position ${token.at + 1}`;
    if (token.kind === 'string') return `the string at position ${token.at + 1}`;
    return `"${token.kind}" at position ${token.at + 1}`;
  }

  #expect(kind: Token['kind']): Token {
    const token = this.#next();
    if (token.kind !== kind) throw this.#fail(`expected "${kind}" but found ${this.#describe(token)}`);
    return token;
  }

  #enter() {
    if (++this.#depth > MAX_DEPTH) throw this.#fail(`the filter nests deeper than ${MAX_DEPTH} levels`);
  }

  parseFilter(): Filter {
    const filter = this.#or(false);
    const rest = this.#peek;
    if (rest.kind !== 'end') throw this.#fail(`unexpected ${this.#describe(rest)}`);
    return filter;
  }

  /** Inside `[...]`: the same grammar with no nested value paths. */
  parseValFilter(): Filter {
    return this.#or(true);
  }

  /** A whole value filter (the text between the brackets of a PATCH path). */
  parseValFilterToEnd(): Filter {
    const filter = this.#or(true);
    const rest = this.#peek;
    if (rest.kind !== 'end') throw this.#fail(`unexpected ${this.#describe(rest)}`);
    return filter;
  }

  #or(inValuePath: boolean): Filter {
    let left = this.#and(inValuePath);
    while (this.#keyword(this.#peek) === 'or') {
      this.#next();
      left = { op: 'or', left, right: this.#and(inValuePath) };
    }
    return left;
  }

  #and(inValuePath: boolean): Filter {
    let left = this.#unary(inValuePath);
    while (this.#keyword(this.#peek) === 'and') {
      this.#next();
      left = { op: 'and', left, right: this.#unary(inValuePath) };
    }
    return left;
  }

  #unary(inValuePath: boolean): Filter {
    this.#enter();
    try {
      const token = this.#peek;
      if (this.#keyword(token) === 'not') {
        this.#next();
        this.#expect('(');
        const inner = this.#or(inValuePath);
        this.#expect(')');
        return { op: 'not', filter: inner };
      }
      if (token.kind === '(') {
        this.#next();
        const inner = this.#or(inValuePath);
        this.#expect(')');
        return inner;
      }
      return this.#attrExp(inValuePath);
    } finally {
      this.#depth--;
    }
  }

  #attrExp(inValuePath: boolean): Filter {
    const token = this.#next();
    if (token.kind !== 'word')
      throw this.#fail(`expected an attribute name but found ${this.#describe(token)}`);
    const path = parseAttrPath(token.text, this.#fail);

    if (this.#peek.kind === '[') {
      if (inValuePath) throw this.#fail(`value filters cannot nest (at position ${this.#peek.at + 1})`);
      if (path.sub) throw this.#fail(`"${token.text}[" : a value filter applies to a multi-valued attribute`);
      this.#next();
      const inner = this.parseValFilter();
      this.#expect(']');
      // Entra: `emails[type eq "work"].value eq "x"`: a sub-attribute comparison after the brackets.
      const after: Token = this.#tokens[this.#pos]!;
      if (after.kind === 'word' && after.text.startsWith('.')) {
        this.#next();
        const sub = after.text.slice(1);
        if (!ATTR_NAME.test(sub)) throw this.#fail(`"${after.text}" is not a valid sub-attribute`);
        const comparison = this.#comparison({ attr: sub });
        return { op: 'valuePath', path, filter: { op: 'and', left: inner, right: comparison } };
      }
      return { op: 'valuePath', path, filter: inner };
    }
    return this.#comparison(path);
  }

  #comparison(path: AttrPath): Filter {
    const operatorToken = this.#next();
    const operator = this.#keyword(operatorToken);
    if (operator === 'pr') return { op: 'pr', path };
    if (!operator || !(COMPARE_OPS as readonly string[]).includes(operator)) {
      throw this.#fail(
        `expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) but found ${this.#describe(operatorToken)}`,
      );
    }
    return { op: operator as CompareOp, path, value: this.#value() };
  }

  #value(): FilterValue {
    const token = this.#next();
    if (token.kind === 'string') return token.value;
    if (token.kind !== 'word') throw this.#fail(`expected a value but found ${this.#describe(token)}`);
    const lower = token.text.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    if (lower === 'null') return null;
    if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(token.text)) return Number(token.text);
    if (lower === 'and' || lower === 'or' || lower === 'not') {
      throw this.#fail(`expected a value but found ${this.#describe(token)}`);
    }
    // Bare word: not RFC, but sent by Microsoft's own SCIM test suite.
    return token.text;
  }
}

/** Parses a `filter` query parameter or SearchRequest filter. @throws ScimError 400 invalidFilter */
export function parseFilter(input: string): Filter {
  if (input.length > MAX_FILTER_LENGTH)
    throw invalidFilter(`the filter is longer than ${MAX_FILTER_LENGTH} characters`);
  if (input.trim() === '') throw invalidFilter('the filter is empty');
  const fail = (detail: string) => invalidFilter(`invalid filter: ${detail}`);
  return new Parser(tokenize(input, fail), fail).parseFilter();
}

/**
 * Parses a PATCH `path`: `attrPath`, `valuePath` or `valuePath.subAttr`.
 * @throws ScimError 400 invalidPath
 */
export function parsePatchPath(input: string): PatchPath {
  const fail = (detail: string) => invalidPath(`invalid path "${input}": ${detail}`);
  if (input.trim() === '') throw fail('the path is empty');
  if (input.length > MAX_FILTER_LENGTH) throw fail(`longer than ${MAX_FILTER_LENGTH} characters`);
  const bracket = input.indexOf('[');
  if (bracket === -1) {
    const attrPath = parseAttrPath(input.trim(), fail);
    return { ...attrPath };
  }
  const close = input.lastIndexOf(']');
  if (close < bracket) throw fail('a "[" is not closed');
  const head = parseAttrPath(input.slice(0, bracket).trim(), fail);
  if (head.sub) throw fail('a value filter applies to a multi-valued attribute, not to a sub-attribute');
  const filterText = input.slice(bracket + 1, close);
  const tail = input.slice(close + 1).trim();
  const filterFail = (detail: string) => invalidPath(`invalid filter in path "${input}": ${detail}`);
  const filter = new Parser(tokenize(filterText, filterFail), filterFail).parseValFilterToEnd();
  const path: PatchPath = { attr: head.attr, filter };
  if (head.uri) path.uri = head.uri;
  if (tail) {
    if (!tail.startsWith('.') || !ATTR_NAME.test(tail.slice(1))) throw fail(`unexpected "${tail}" after "]"`);
    path.sub = tail.slice(1);
  }
  return path;
}
