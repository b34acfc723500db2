import { createRevocationList, createRoster } from '@roster/sdk';
import { createApp } from './app.js';

/**
 *   ROSTER_URL=http://127.0.0.1:3000 ROSTER_SECRET_KEY=rst_sk_… npm start -w @roster/example-express-app
 * Listens on PORT (default 4000). Sign in with POST /login {"email", "organization_id"}.
 */
const rosterUrl = process.env.ROSTER_URL ?? 'http://127.0.0.1:3000';
const secretKey = process.env.ROSTER_SECRET_KEY;
if (!secretKey) {
  console.error('Set ROSTER_SECRET_KEY (the Roster management key).');
  process.exit(1);
}
const roster = createRoster({ baseUrl: rosterUrl, secretKey });
const revocations = createRevocationList({ events: roster.events, onError: (error) => console.warn(error) });
await revocations.start();
const port = Number(process.env.PORT ?? 4000);
createApp({ roster, rosterUrl, revocations, secureCookies: false }).listen(port, '127.0.0.1', () => {
  console.log(`example app on http://127.0.0.1:${port}, sessions from ${rosterUrl}`);
});
