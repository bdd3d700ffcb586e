// Builds the console into console/dist: one hashed JS and one hashed CSS file (each with a
// gzip twin the server sends to clients that accept it), and index.html naming them.
// Run by `make run` / `make test` through the Makefile, never by hand.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "main.jsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  outdir: join(dist, "assets"),
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const names = { js: null, css: null };
for (const file of Object.keys(result.metafile.outputs)) {
  const ext = file.endsWith(".js") ? "js" : file.endsWith(".css") ? "css" : null;
  if (!ext) continue;
  names[ext] = basename(file);
  writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
}
const html = readFileSync(join(here, "index.html"), "utf8")
  .replace("%JS%", names.js)
  .replace("%CSS%", names.css);
writeFileSync(join(dist, "index.html"), html);
console.log(`console built: assets/${names.js}, assets/${names.css}`);
