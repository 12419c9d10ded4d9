// rules.js's runs() (its opening by run lengths) against OpenCV.js's own dilate + MORPH_OPEN +
// bitwise_and on random binary masks: odd and even kernel lengths, runs touching the borders.
//   node web/tools/check_runs.mjs      (exit 1 on any differing pixel)

import cvModule from "@techstark/opencv-js";
import { useCv } from "../src/runtime/cv.js";
import { runs } from "../src/runtime/rules.js";

let cv = cvModule;
if (!cv.Mat) await new Promise((resolve) => { cv.onRuntimeInitialized = resolve; });
useCv(cv);

function reference(mask, length, horizontal) {       // rules.py's runs, with OpenCV's opening
  const along = cv.getStructuringElement(cv.MORPH_RECT, horizontal ? new cv.Size(length, 1) : new cv.Size(1, length));
  const across = cv.getStructuringElement(cv.MORPH_RECT, horizontal ? new cv.Size(1, 5) : new cv.Size(5, 1));
  const thick = new cv.Mat(), out = new cv.Mat();
  cv.dilate(mask, thick, across);
  cv.morphologyEx(thick, out, cv.MORPH_OPEN, along);
  cv.bitwise_and(out, mask, out);
  for (const m of [along, across, thick]) m.delete();
  return out;
}

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
let bad = 0, total = 0;
for (let trial = 0; trial < 300; trial++) {
  const h = 5 + Math.floor(random() * 40), w = 5 + Math.floor(random() * 40), p = random();
  const mask = new cv.Mat(h, w, cv.CV_8UC1);
  for (let i = 0; i < h * w; i++) mask.data[i] = random() < p ? 1 : 0;
  for (const length of [2, 3, 4, 5, 8, 9, 16]) {
    for (const horizontal of [true, false]) {
      if (length > Math.min(h, w)) continue;
      const a = reference(mask, length, horizontal), b = runs(mask, length, horizontal);
      let differ = 0;
      for (let i = 0; i < h * w; i++) if (a.data[i] !== b.data[i]) differ++;
      if (differ) bad++;
      total++;
      a.delete();
      b.delete();
    }
  }
  mask.delete();
}
console.log(`runs() equals OpenCV's opening on ${total - bad}/${total} random masks`);
process.exit(bad ? 1 : 0);
