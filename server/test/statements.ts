import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * Records every statement this process sends to the database, through either driver (pg's
 * Client, or PGlite's query), until `stop()`: the server runs in this process.
 */
export function recordStatements(): { stop(): string[] } {
  const statements: string[] = [];
  const restores: (() => void)[] = [];
  for (const [proto, name] of [
    [pg.Client.prototype, 'query'],
    [PGlite.prototype, 'query'],
    [PGlite.prototype, 'exec'],
  ] as const) {
    let owner: object | null = proto;
    while (owner && !Object.hasOwn(owner, name)) owner = Object.getPrototypeOf(owner);
    if (!owner) throw new Error(`no ${name} method to record`);
    const target = owner as Record<string, (...args: unknown[]) => unknown>;
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      const first = args[0] as string | { text?: string };
      statements.push(typeof first === 'string' ? first : (first?.text ?? ''));
      return original.apply(this, args);
    };
    restores.push(() => {
      target[name] = original;
    });
  }
  return {
    stop() {
      for (const restore of restores) restore();
      return statements;
    },
  };
}

/** What `run` returns, and the statements matching `pattern` sent while it ran. */
export async function statementsDuring<T>(
  run: () => Promise<T>,
  pattern: RegExp,
): Promise<{ result: T; statements: string[] }> {
  const recording = recordStatements();
  let result: T;
  let statements: string[];
  try {
    result = await run();
  } finally {
    // Stopped whatever happens: a failing run must not leave the drivers recording.
    statements = recording.stop();
  }
  return { result, statements: statements.filter((s) => pattern.test(s)) };
}
