// The OpenCV.js instance every runtime module uses: `import { cv } from "./cv.js";` (a live
// binding). `readPage(cvInstance, ...)` and `normalizeDigit(cvInstance, ...)` set it on entry.
//
// Two traps of this OpenCV.js build (4.12.0):
// - the module object has a `then` of its own: a promise resolved with it (an async function
//   returning it) never settles; pass it around inside an object ({cv}) or as an argument.
// - `mat.roi(rect).clone()` keeps the parent's row step (not continuous: `.data` then holds the
//   parent's rows); `cropMat` copies a region into a new continuous Mat.
export let cv = null;

export function useCv(instance) {
  cv = instance;
}

// A new continuous Mat holding mat's region x, y, w, h (the caller deletes it).
export function cropMat(mat, x, y, w, h) {
  const view = mat.roi(new cv.Rect(x, y, w, h));
  const out = new cv.Mat();
  try {
    view.copyTo(out);
  } finally {
    view.delete();
  }
  return out;
}
