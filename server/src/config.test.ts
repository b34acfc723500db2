import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseBytes, parseDuration } from './config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      dataDir: '.roster',
      pgliteSharedBuffers: 16 * 1024 * 1024,
      pgliteWasmTier: 'optimizing',
      secretKey: undefined,
      publicUrl: undefined,
      logLevel: 'info',
      sessionTtlMs: 60_000,
      scimTokenGraceMs: 24 * 3_600_000,
      bodyLimitBytes: 1024 * 1024,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u:p@db:5432/roster',
      ROSTER_DATA_DIR: '/var/lib/roster',
      ROSTER_PGLITE_SHARED_BUFFERS: '64mb',
      ROSTER_PGLITE_WASM_TIER: 'baseline',
      ROSTER_SECRET_KEY: 'rst_sk_0123456789abcdef0123456789abcdef',
      ROSTER_PUBLIC_URL: 'https://roster.example.com/',
      LOG_LEVEL: 'debug',
      ROSTER_SESSION_TTL: '5m',
      ROSTER_SCIM_TOKEN_GRACE: '1h',
      ROSTER_BODY_LIMIT: '512kb',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://u:p@db:5432/roster',
      dataDir: '/var/lib/roster',
      pgliteSharedBuffers: 64 * 1024 * 1024,
      pgliteWasmTier: 'baseline',
      publicUrl: 'https://roster.example.com',
      logLevel: 'debug',
      sessionTtlMs: 300_000,
      scimTokenGraceMs: 3_600_000,
      bodyLimitBytes: 512 * 1024,
    });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 3000, databaseUrl: undefined });
  });

  it('treats DATABASE_URL as a transaction-mode pooler when a direct URL is given, unless told otherwise', () => {
    const pooled = { DATABASE_URL: 'postgres://u:p@bouncer:6432/roster' };
    const direct = 'postgres://u:p@db:5432/roster';
    expect(loadConfig(pooled)).toMatchObject({ databasePooler: 'none', databaseDirectUrl: undefined });
    expect(loadConfig({ ...pooled, DATABASE_DIRECT_URL: direct })).toMatchObject({
      databasePooler: 'transaction',
      databaseDirectUrl: direct,
    });
    expect(loadConfig({ ...pooled, ROSTER_DATABASE_POOLER: 'transaction' })).toMatchObject({
      databasePooler: 'transaction',
      databaseDirectUrl: undefined,
    });
    expect(
      loadConfig({ ...pooled, DATABASE_DIRECT_URL: direct, ROSTER_DATABASE_POOLER: 'none' }),
    ).toMatchObject({ databasePooler: 'none' });
  });

  it.each([
    [{ PORT: 'abc' }, /^PORT must be a port number \(got "abc"\)$/],
    [{ PORT: '70000' }, /^PORT must be between 0 and 65535 \(got "70000"\)$/],
    [
      { DATABASE_URL: 'mysql://x' },
      /^DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ connection URL/,
    ],
    [{ ROSTER_DATABASE_POOLER: 'session' }, /^ROSTER_DATABASE_POOLER must be "none" or "transaction"/],
    [{ DATABASE_DIRECT_URL: 'postgres://u:p@db/r' }, /^DATABASE_DIRECT_URL needs DATABASE_URL/],
    [{ ROSTER_DATABASE_POOLER: 'transaction' }, /^ROSTER_DATABASE_POOLER needs DATABASE_URL/],
    [
      { ROSTER_WORKERS: '2' },
      /^ROSTER_WORKERS must be 1 with the embedded database, which serves one process/,
    ],
    [{ DATABASE_URL: 'postgres://u:p@db/r', ROSTER_WORKERS: '0' }, /^ROSTER_WORKERS must be at least 1/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/],
    [{ ROSTER_PUBLIC_URL: 'roster.example.com' }, /^ROSTER_PUBLIC_URL must be an absolute http\(s\) URL/],
    [{ ROSTER_SESSION_TTL: 'soon' }, /^ROSTER_SESSION_TTL must be a duration/],
    [{ ROSTER_SESSION_TTL: '1s' }, /^ROSTER_SESSION_TTL must be a duration .* between 5s/],
    [{ ROSTER_BODY_LIMIT: 'huge' }, /^ROSTER_BODY_LIMIT must be a size/],
    [{ ROSTER_PGLITE_SHARED_BUFFERS: '512kb' }, /^ROSTER_PGLITE_SHARED_BUFFERS must be a size .*between 1mb/],
    [{ ROSTER_PGLITE_SHARED_BUFFERS: '2048mb' }, /^ROSTER_PGLITE_SHARED_BUFFERS must be a size/],
    [{ ROSTER_PGLITE_WASM_TIER: 'turbo' }, /^ROSTER_PGLITE_WASM_TIER must be "optimizing" or "baseline"/],
    [{ ROSTER_SCIM_RATE_LIMIT: '0' }, /^ROSTER_SCIM_RATE_LIMIT must be at least 1/],
    [{ ROSTER_API_RATE_LIMIT: '0' }, /^ROSTER_API_RATE_LIMIT must be at least 1/],
    [{ ROSTER_MAX_CONNECTIONS: '0' }, /^ROSTER_MAX_CONNECTIONS must be at least 1/],
    [{ ROSTER_HEADERS_TIMEOUT: '100ms' }, /^ROSTER_HEADERS_TIMEOUT must be a duration/],
  ])('rejects %o with one line naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('never echoes a secret in its error', () => {
    try {
      loadConfig({ ROSTER_SECRET_KEY: 'short-secret' });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(/^ROSTER_SECRET_KEY must be at least 32 characters/);
      expect((error as Error).message).not.toContain('short-secret');
    }
  });
});

describe('parseDuration / parseBytes', () => {
  it.each([
    ['60', 60_000],
    ['60s', 60_000],
    ['250ms', 250],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
    ['1.5h', 5_400_000],
    ['x', undefined],
    ['-5s', undefined],
  ])('parseDuration(%j) = %j', (input, want) => expect(parseDuration(input)).toBe(want));

  it.each([
    ['1024', 1024],
    ['512kb', 524_288],
    ['1MB', 1_048_576],
    ['1gb', undefined],
  ])('parseBytes(%j) = %j', (input, want) => expect(parseBytes(input)).toBe(want));
});

describe('webhook targets', () => {
  it('private targets are refused unless allowed, and the allow-list is validated', () => {
    const defaults = loadConfig({});
    expect(defaults.webhookAllowPrivate).toBe(false);
    expect(defaults.webhookAllowedTargets).toEqual([]);
    const open = loadConfig({
      ROSTER_WEBHOOK_ALLOW_PRIVATE: 'true',
      ROSTER_WEBHOOK_ALLOWED_TARGETS: ' 10.0.0.0/8, fd00::/8 ,hooks.internal,192.168.1.5',
    });
    expect(open.webhookAllowPrivate).toBe(true);
    expect(open.webhookAllowedTargets).toEqual(['10.0.0.0/8', 'fd00::/8', 'hooks.internal', '192.168.1.5']);
    expect(() => loadConfig({ ROSTER_WEBHOOK_ALLOWED_TARGETS: '10.0.0.0/33' })).toThrow(
      /ROSTER_WEBHOOK_ALLOWED_TARGETS must be a comma-separated list/,
    );
    expect(() => loadConfig({ ROSTER_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(/must be true or false/);
  });
});
