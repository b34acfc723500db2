/**
 * The process settings that server/bin/roster-node gives node on the embedded database. They must
 * be in place before the process starts, so the server cannot apply them itself; it can only say
 * that they are missing. Started as `node dist/main.js` (a container's CMD, a process manager), the
 * server idles near 270 MB on PGlite instead of about 160 MB (README, "The embedded database").
 */
export function missingEmbeddedSettings(
  execArgv: readonly string[],
  env: NodeJS.ProcessEnv,
): string | undefined {
  // Given on the command line or in NODE_OPTIONS, with any value (an operator's own is theirs).
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map((arg) => arg.split('=')[0]);
  const missing = [
    ...['--v8-pool-size=1', '--max-semi-space-size=4'].filter((flag) => !given.includes(flag.split('=')[0])),
    ...(env.MALLOC_TRIM_THRESHOLD_ === undefined ? ['MALLOC_TRIM_THRESHOLD_=131072'] : []),
  ];
  if (missing.length === 0) return undefined;
  return (
    `started without server/bin/roster-node (missing ${missing.join(', ')}): on the embedded database ` +
    'the server then uses about 100 MB more memory. Start it as `npm start` or ' +
    '`server/bin/roster-node server/dist/main.js`, or give node those settings yourself.'
  );
}
