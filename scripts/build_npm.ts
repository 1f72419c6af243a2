/**
 * `deno task build:npm`: builds the npm package into `npm/` from the same
 * sources JSR publishes, with the TypeScript compiler (dnt's job, done small).
 *
 * - ES modules + `.d.ts` for every entry point in deno.json `exports`,
 *   laid out as the sources are (`mod.js`, `src/*.js`, `transports/*.js`).
 * - ESM only, no CommonJS copy: Node ≥ 20.19 / 22.12 and Bun `require()` ES
 *   modules, and one copy avoids the dual-package hazard (two `Client` classes,
 *   `instanceof` failing across them).
 * - `.` gets one entry per runtime export condition (`workerd` →
 *   `mod.cloudflare.js`, `deno` → `mod.deno.js`, `bun` and `node` →
 *   `mod.node.js`): `mod.ts` with the dynamic imports of other runtimes'
 *   transports replaced by a rejection, so a bundler (wrangler, esbuild)
 *   never pulls `node:net` into a Worker or `cloudflare:sockets` into Node.
 *   `default` is `mod.ts` compiled unchanged.
 * - `sideEffects` names the `.` entries only (`mod.js`, `mod.<runtime>.js`):
 *   importing one registers the runtime's transport as the default
 *   (`setDefaultTransportLoader` at mod.ts's top level), which a bundler told
 *   `false` would drop whenever the import looks unused. Every other module,
 *   the transport entries included, only declares.
 * - `engines.node` is `>=20`, the oldest Node that can `import` the package;
 *   `require()` of it needs Node ≥ 20.19 / 22.12 (see package.json below).
 * - `transports/deno.ts` uses Deno's types internally; the build fails if any
 *   emitted `.d.ts` refers to them, so the published types need only
 *   TypeScript's own libs.
 *
 * Then it reports the packed tarball size and the minified sizes of the
 * Worker in tests/npm/worker/ bundled for workerd: as a get/set Worker (its
 * `MemcachedCache` route defined away; limit 72 KB: 40 KB until every client
 * class carried the meta protocol, getOrSet, the observer hook and ASCII auth, 68 KB until getOrSet ended its
 * background work on close(), the observer guarded its callbacks and connections unref'd when idle) and whole (reported only:
 * `MemcachedCache` brings in `HashClient`, `PooledClient` and their hashing).
 *
 * @module
 */
import ts from "typescript";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const OUT = `${ROOT}/npm`;
const WORKER_EXAMPLE = `${ROOT}/tests/npm/worker/src/index.js`;
const WORKER_LIMIT = 72_000;
const REPOSITORY = "https://github.com/memkit/memcache";
const REQUIRED_ENTRIES = [".", "./deno", "./node", "./cloudflare", "./testing", "./keyv"];
/**
 * Entries built on the public API (`./mod.ts`), whose `.js` imports the package
 * by its own name instead, so the runtime's `.` entry is the one loaded: in a
 * Worker the workerd build, never `mod.js` with every runtime's transport.
 */
const ON_PUBLIC_API = ["keyv.js"];
/** The runtime entries of `.`: export condition → the one transport `mod.<transport>.js` may load. */
const RUNTIME_ENTRIES: Record<string, string> = { workerd: "cloudflare", deno: "deno", bun: "node", node: "node" };

const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
const exportsMap: Record<string, string> = denoJson.exports;
const missing = REQUIRED_ENTRIES.filter((entry) => !(entry in exportsMap));
if (missing.length > 0) fail(`deno.json exports lack ${missing.join(", ")}`);

await Deno.remove(OUT, { recursive: true }).catch(() => {});
await Deno.mkdir(OUT, { recursive: true });

// --- compile ---------------------------------------------------------------
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  // What Node 20, the oldest runtime supported, has: ES2022 plus well-formed
  // string checks; Symbol.asyncDispose since Node 20.4.
  lib: ["lib.es2022.d.ts", "lib.es2024.string.d.ts", "lib.esnext.disposable.d.ts"],
  types: ["node"],
  typeRoots: [`${ROOT}/node_modules/@types`],
  strict: true,
  declaration: true,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  verbatimModuleSyntax: true,
  skipLibCheck: true,
  rootDir: ROOT,
  outDir: OUT,
  newLine: ts.NewLineKind.LineFeed,
};
const roots = Object.values(exportsMap).map((path) => `${ROOT}/${path.replace(/^\.\//, "")}`);
const program = ts.createProgram(roots, options);
// transports/deno.ts is type-checked by `deno check`; here only Deno's
// namespace is unknown (its types never reach a .d.ts: checked below).
const unknownDeno = (d: ts.Diagnostic) =>
  (d.code === 2304 || d.code === 2503) && ts.flattenDiagnosticMessageText(d.messageText, "\n").includes("'Deno'");
const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !unknownDeno(d));
if (diagnostics.length > 0) fail(format(diagnostics));

const written = new Map<string, string>();
const result = program.emit(
  undefined,
  (path, text) => written.set(path, text),
  undefined,
  false,
  { afterDeclarations: [jsSpecifiers] },
);
if (result.emitSkipped || result.diagnostics.length > 0) fail(format(result.diagnostics));

// The published types must stand alone: no imports of other packages or of
// runtime modules (node:*, cloudflare:*), no Deno namespace. Explicit resource
// management (`Symbol.asyncDispose`) comes from TypeScript's own lib.
const printer = ts.createPrinter({ removeComments: true });
for (const [path, text] of written) {
  if (!path.endsWith(".d.ts")) continue;
  const name = path.slice(OUT.length + 1);
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest);
  const code = printer.printFile(file);
  if (/\bDeno\b/.test(code)) fail(`${name} refers to Deno's types; keep them out of the public API`);
  const foreign = file.statements.flatMap((s) =>
    (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier &&
      ts.isStringLiteral(s.moduleSpecifier) && !s.moduleSpecifier.text.startsWith(".")
      ? [s.moduleSpecifier.text]
      : []
  );
  if (foreign.length > 0 || /import\("[^.]/.test(code)) {
    fail(`${name} imports ${foreign.join(", ") || "a package"}; the published types must need nothing else`);
  }
  if (/\bSymbol\.(async)?[dD]ispose\b|\b(Async)?Disposable\b/.test(code)) {
    written.set(path, `/// <reference lib="esnext.disposable" />\n${text}`);
  }
}

const modSource = program.getSourceFile(`${ROOT}/mod.ts`)!;
for (const [condition, keep] of Object.entries(RUNTIME_ENTRIES)) {
  const file = `mod.${keep}.js`;
  if (written.has(`${OUT}/${file}`)) continue; // bun and node share one
  const kept: string[] = [];
  program.emit(
    modSource,
    (path, text) => {
      if (path.endsWith(".js")) written.set(`${OUT}/${file}`, text);
    },
    undefined,
    false,
    { before: [onlyTransport(keep, kept)] },
  );
  if (!kept.includes(keep)) fail(`mod.ts never imports ./transports/${keep}.ts, needed for the "${condition}" entry`);
}

for (const file of ON_PUBLIC_API) {
  const path = `${OUT}/${file}`;
  const text = written.get(path);
  if (text === undefined || !/from "\.\/mod\.js";/.test(text)) fail(`${file} does not import ./mod.js`);
  const rewritten = text.replaceAll('from "./mod.js";', `from "${denoJson.name}";`);
  if (/from "\.\//.test(rewritten)) fail(`${file} imports more than the public API (./mod.ts)`);
  written.set(path, rewritten);
}

for (const [path, text] of written) {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
}

// --- package.json, README, LICENSE ------------------------------------------
const js = (path: string) => path.replace(/\.ts$/, ".js");
const dts = (path: string) => path.replace(/\.ts$/, ".d.ts");
const packageExports: Record<string, unknown> = { "./package.json": "./package.json" };
for (const [entry, path] of Object.entries(exportsMap)) {
  packageExports[entry] = entry === "."
    ? {
      types: dts(path),
      ...Object.fromEntries(Object.entries(RUNTIME_ENTRIES).map(([cond, keep]) => [cond, `./mod.${keep}.js`])),
      default: js(path),
    }
    : { types: dts(path), default: js(path) };
}
const packageJson = {
  name: denoJson.name,
  version: denoJson.version,
  description: "memcached client for Deno, Node, Bun and Cloudflare Workers, with pymemcache's Client API",
  keywords: ["memcached", "memcache", "cache", "pymemcache", "deno", "bun", "cloudflare-workers"],
  license: denoJson.license,
  repository: { type: "git", url: `git+${REPOSITORY}.git` },
  homepage: `https://jsr.io/${denoJson.name}`,
  bugs: { url: `${REPOSITORY}/issues` },
  type: "module",
  main: "./mod.js",
  types: "./mod.d.ts",
  exports: packageExports,
  files: ["*.js", "*.d.ts", "src/", "transports/"],
  // mod.ts (so each `.` entry) calls setDefaultTransportLoader when imported:
  // with `false`, a bundler could drop `import "@memkit/memcache"` or, worse,
  // keep the classes and drop the registration, leaving clients without a
  // transport. The transport entries and src/ have no side effects.
  sideEffects: ["./mod.js", "./mod.*.js"],
  // The package is ESM only, and `import` works on every Node 20 (the
  // compiled code targets ES2022 plus what Node 20.0 has). `require()` of an
  // ES module needs Node ≥ 20.19 (or ≥ 22.12): a runtime limit on that one way
  // of loading it, as README says, not on the package. `engines` is one
  // constraint on the whole package, not per way of loading it, and ">=20.19"
  // would make installs under `engine-strict` fail on 20.0–20.18, where
  // `import` works; so it stays the floor for `import`, and README documents
  // the require() floor.
  engines: { node: ">=20" },
  publishConfig: { access: "public" },
};
await Deno.writeTextFile(`${OUT}/package.json`, JSON.stringify(packageJson, null, 2) + "\n");
for (const name of ["README.md", "LICENSE"]) {
  try {
    await Deno.copyFile(`${ROOT}/${name}`, `${OUT}/${name}`);
  } catch {
    console.warn(`warning: ${name} is missing; the package ships without it`);
  }
}

// --- sizes -----------------------------------------------------------------
const pack = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], OUT);
const [packed] = JSON.parse(pack);
console.log(`npm/: ${packed.name}@${packed.version}, ${packed.entryCount} files`);
console.log(`tarball: ${packed.size} bytes (unpacked ${packed.unpackedSize} bytes)`);

const bundleSize = await workerBundleSize(false);
console.log(`worker bundle (get/set example, minified, workerd conditions): ${bundleSize} bytes`);
if (bundleSize >= WORKER_LIMIT) fail(`the Worker bundle is ${bundleSize} bytes, over the ${WORKER_LIMIT}-byte limit`);
console.log(`worker bundle with its MemcachedCache route (no limit): ${await workerBundleSize(true)} bytes`);

/**
 * Bundles tests/npm/worker/src/index.js against npm/ as wrangler does
 * (esbuild, workerd conditions); without `cacheRoute`, its /cache route
 * (`MemcachedCache`) is dead code, as in the get/set Worker README sizes.
 */
async function workerBundleSize(cacheRoute: boolean): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "memkit-size-" });
  try {
    await Deno.mkdir(`${dir}/node_modules/@memkit`, { recursive: true });
    await Deno.symlink(OUT, `${dir}/node_modules/@memkit/memcache`);
    await Deno.copyFile(WORKER_EXAMPLE, `${dir}/index.js`);
    await run(`${ROOT}/node_modules/.bin/esbuild`, [
      "index.js",
      "--bundle",
      "--minify",
      "--format=esm",
      "--platform=neutral",
      "--conditions=workerd,worker,browser",
      "--main-fields=module,main",
      "--external:cloudflare:*",
      ...(cacheRoute ? [] : ["--define:globalThis.MEMKIT_CACHE_ROUTE=false"]),
      "--outfile=out.js",
      "--log-level=warning",
    ], dir);
    return (await Deno.stat(`${dir}/out.js`)).size;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Rewrites `"./x.ts"` to `"./x.js"` in declaration files (TypeScript does so only in JS). */
function jsSpecifiers(context: ts.TransformationContext): ts.Transformer<ts.SourceFile | ts.Bundle> {
  const f = context.factory;
  const rewrite = (spec: ts.Expression | undefined) =>
    spec && ts.isStringLiteral(spec) && /^\.\.?\/.*\.ts$/.test(spec.text)
      ? f.createStringLiteral(spec.text.replace(/\.ts$/, ".js"))
      : spec;
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isImportDeclaration(node)) {
      return f.updateImportDeclaration(
        node,
        node.modifiers,
        node.importClause,
        rewrite(node.moduleSpecifier)!,
        node.attributes,
      );
    }
    if (ts.isExportDeclaration(node)) {
      return f.updateExportDeclaration(
        node,
        node.modifiers,
        node.isTypeOnly,
        node.exportClause,
        rewrite(node.moduleSpecifier),
        node.attributes,
      );
    }
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const literal = rewrite(node.argument.literal as ts.Expression) as ts.StringLiteral;
      return f.updateImportTypeNode(
        node,
        f.updateLiteralTypeNode(node.argument, literal),
        node.attributes,
        node.qualifier,
        node.typeArguments,
        node.isTypeOf,
      );
    }
    return ts.visitEachChild(node, visit, context);
  };
  return (node) => ts.isSourceFile(node) ? ts.visitNode(node, visit) as ts.SourceFile : node;
}

/**
 * A transformer keeping `import("./transports/<keep>.ts")` in mod.ts and
 * turning every other runtime's transport import into a rejection.
 */
function onlyTransport(keep: string, kept: string[]): ts.TransformerFactory<ts.SourceFile> {
  return (context) => {
    const f = context.factory;
    const visit = (node: ts.Node): ts.Node => {
      if (
        ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
        node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])
      ) {
        const name = /^\.\/transports\/(\w+)\.ts$/.exec(node.arguments[0].text)?.[1];
        if (name === keep) kept.push(name);
        else if (name !== undefined) {
          const message = `@memkit/memcache: the ${name} transport is not in this runtime's build; ` +
            `import it from "@memkit/memcache/${name}"`;
          return f.createCallExpression(
            f.createPropertyAccessExpression(f.createIdentifier("Promise"), "reject"),
            undefined,
            [f.createNewExpression(f.createIdentifier("Error"), undefined, [f.createStringLiteral(message)])],
          );
        }
      }
      return ts.visitEachChild(node, visit, context);
    };
    return (file) => ts.visitNode(file, visit) as ts.SourceFile;
  };
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) fail(`${cmd} ${args.join(" ")} failed:\n${text}${new TextDecoder().decode(out.stderr)}`);
  return text;
}

function format(list: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(list, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => "\n",
  });
}

function fail(message: string): never {
  console.error(`build:npm: ${message}`);
  Deno.exit(1);
}
