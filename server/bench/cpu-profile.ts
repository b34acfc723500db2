import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Reads the `.cpuprofile` that `node --cpu-prof` wrote for the server and prints, per measured
 * window (one per operation of the round-trips bench), where the server's CPU went: self time and
 * total time (the function or anything it called) per function, and self time per package.
 *
 * Windows are in microseconds of the monotonic clock (process.hrtime), the clock V8 stamps its
 * samples with, so the bench process can mark them and the server's profile be cut by them.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Window {
  name: string;
  ops: number;
  startUs: number;
  endUs: number;
}

export const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** `node_modules/<package>`, `node:internal`, `roster` (dist/) or a V8 pseudo-frame. */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node';
  if (url.includes('/dist/')) return 'roster';
  return url;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${path.basename(url)}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
}

export function summarizeProfile(dir: string, windows: Window[], top = 25): void {
  const file = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(path.join(dir, b)).mtimeMs - statSync(path.join(dir, a)).mtimeMs)[0];
  if (!file) {
    console.log(`(no .cpuprofile in ${dir})`);
    return;
  }
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample times: startTime plus the running sum of timeDeltas; each sample weighs its delta.
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) {
    t += delta;
    times.push(t);
  }
  for (const window of windows) {
    const self = new Map<string, number>();
    const total = new Map<string, number>();
    const packages = new Map<string, number>();
    let busy = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      if (times[i]! < window.startUs || times[i]! > window.endUs) continue;
      const weight = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]!;
      const node = byId.get(profile.samples[i]!)!;
      if (node.callFrame.functionName === '(idle)') continue;
      busy += weight;
      self.set(label(node), (self.get(label(node)) ?? 0) + weight);
      const pkg = packageOf(node.callFrame.url, node.callFrame.functionName);
      packages.set(pkg, (packages.get(pkg) ?? 0) + weight);
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const l = label(byId.get(id)!);
        if (seen.has(l)) continue;
        seen.add(l);
        total.set(l, (total.get(l) ?? 0) + weight);
      }
    }
    const perOp = (us: number) => (us / 1000 / window.ops).toFixed(3);
    const share = (us: number) => `${((100 * us) / Math.max(busy, 1)).toFixed(1)}%`;
    const rows = (map: Map<string, number>, n: number) =>
      [...map]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([name, us]) => `  ${perOp(us).padStart(7)} ${share(us).padStart(6)}  ${name}`);
    // A sample weighs the wall time since the previous one: on a busy machine, where the server
    // waits for a core, the ms are inflated; the shares hold better.
    console.log(`\n${window.name}: ${perOp(busy)} ms sampled (not idle) per op; ms/op and share`);
    console.log(' self ms/op by package:');
    console.log(rows(packages, 12).join('\n'));
    console.log(' self ms/op by function:');
    console.log(rows(self, top).join('\n'));
    console.log(' total ms/op by function:');
    console.log(rows(new Map([...total].filter(([name]) => !name.startsWith('(root)'))), top).join('\n'));
  }
}

// `tsx bench/cpu-profile.ts DIR [TOP] [FILTER]`: the summary again, from a profile kept with
// `--round-trips --cpu-prof=DIR`; FILTER keeps the windows whose name contains it.
if (process.argv[1] && import.meta.filename === path.resolve(process.argv[1])) {
  const [dir, top, filter] = process.argv.slice(2);
  const windows = JSON.parse(readFileSync(path.join(dir!, 'windows.json'), 'utf8')) as Window[];
  summarizeProfile(
    dir!,
    windows.filter((w) => !filter || w.name.includes(filter)),
    Number(top ?? 25),
  );
}
