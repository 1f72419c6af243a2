/**
 * The layout rules of README "Layout", checked on the module graph Deno
 * itself resolves (`deno info --json` on every published entry point, type
 * imports included):
 *
 * - no import cycle among the published files;
 * - imports between the folders of `src/` run one way only (see `ALLOWED`);
 * - no hand-written file over 800 lines (a generated file says so in its
 *   first line).
 *
 *   deno run --allow-all scripts/check_layout.ts   # prints each problem, exits 1 on any
 *
 * `deno task check` runs it, and so does tests/unit/layout_deno_test.ts.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);
const ROOT_PATH = decodeURIComponent(ROOT.pathname);

/** Where each folder of `src/` may import from (besides itself and `src/errors.ts`, which every folder may use). */
export const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  connection: ["protocol"],
  placement: ["protocol", "connection"],
  values: ["protocol"],
  server: ["protocol"],
  clients: ["protocol", "connection", "placement", "values"],
  cache: ["protocol", "connection", "placement", "values", "clients"],
};

/** The longest a hand-written file may be. */
export const MAX_LINES = 800;

/** The published entry points (deno.json "exports"). */
function entryPoints(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  return Object.values(config.exports as Record<string, string>).map((p) => new URL(p, ROOT).href);
}

/** Every local module the entry points reach, with the local modules each imports (code or type). */
export async function moduleGraph(): Promise<Map<string, Set<string>>> {
  const local = (s: string) => s.startsWith(ROOT.href) && !s.includes("/node_modules/");
  const graph = new Map<string, Set<string>>();
  for (const entry of entryPoints()) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT_PATH,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) throw new Error(`deno info ${entry} failed: ${new TextDecoder().decode(output.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      modules: { specifier: string; dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[] }[];
    };
    for (const module of info.modules) {
      if (!local(module.specifier)) continue;
      const deps = new Set<string>();
      for (const dep of module.dependencies ?? []) {
        for (const target of [dep.code?.specifier, dep.type?.specifier]) {
          if (target !== undefined && local(target)) deps.add(target.slice(ROOT.href.length));
        }
      }
      graph.set(module.specifier.slice(ROOT.href.length), deps);
    }
  }
  return graph;
}

/** The import cycles of `graph` (strongly connected components of more than one file, or a file importing itself). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** The folder of `src/` a file is in, or null for files outside one (`src/errors.ts`, the entry points). */
export function roomOf(path: string): string | null {
  const m = /^src\/([^/]+)\//.exec(path);
  return m ? m[1] : null;
}

/** Imports that run against the folders' direction, as "from -> to" lines. */
export function wrongWay(graph: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  for (const [from, deps] of graph) {
    const a = roomOf(from);
    for (const to of deps) {
      const b = roomOf(to);
      if (from.startsWith("src/") && !to.startsWith("src/")) {
        problems.push(`${from} -> ${to}: the core imports from outside src/`);
        continue;
      }
      if (a === null || b === null || a === b) continue;
      if (!(a in ALLOWED)) problems.push(`${from}: src/${a}/ is not a known folder (add it to ALLOWED)`);
      else if (!ALLOWED[a].includes(b)) problems.push(`${from} -> ${to}: src/${a}/ may not import from src/${b}/`);
    }
    if (from.startsWith("src/") && a === null && from !== "src/errors.ts") {
      problems.push(`${from}: every file of src/ but errors.ts belongs in a folder`);
    }
  }
  return problems.sort();
}

/** Hand-written TypeScript files over `MAX_LINES` lines, as "path: N lines". */
export async function oversized(): Promise<string[]> {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts", "*.mjs"],
    cwd: ROOT_PATH,
    stdout: "piped",
  }).output();
  const problems: string[] = [];
  for (const path of new TextDecoder().decode(listed.stdout).split("\n")) {
    if (path === "" || path.startsWith("npm/")) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(new URL(path, ROOT));
    } catch {
      continue; // deleted in the work tree
    }
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    const generated = /generated by/i.test(text.split("\n", 3).join("\n"));
    if (lines > MAX_LINES && !generated) problems.push(`${path}: ${lines} lines (at most ${MAX_LINES})`);
  }
  return problems;
}

/** Every layout problem, one line each. */
export async function layoutProblems(): Promise<string[]> {
  const graph = await moduleGraph();
  return [
    ...cycles(graph).map((c) => `import cycle: ${c.join(" <-> ")}`),
    ...wrongWay(graph),
    ...await oversized(),
  ];
}

if (import.meta.main) {
  const problems = await layoutProblems();
  for (const p of problems) console.error(p);
  if (problems.length > 0) Deno.exit(1);
  console.log("layout: no import cycle, imports run one way between src/ folders, no hand-written file over 800 lines");
}
