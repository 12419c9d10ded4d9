// The page reader's tuning values: runtime/tuning.json, the file the Python runtime reads
// (runtime/tuning.py). In the source tree web/src/runtime/tuning.json is a link to it; the
// build copies the real file. Each module takes its own section, as in Python:
//
//   import { TUNING } from "./tuning.js";
//   const T = TUNING["ink"];
//   const WINDOW = T["WINDOW"];

const url = new URL("./tuning.json", import.meta.url);

async function load() {
  if (url.protocol === "file:") {                     // node (the dev harness)
    const fs = await import("node:fs");
    return JSON.parse(fs.readFileSync(url, "utf8"));
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  return response.json();
}

export const TUNING = await load();
