// The OpenCV.js instance every runtime module uses: `import { cv } from "./cv.js";` (a live
// binding). `readPage(cvInstance, ...)` and `normalizeDigit(cvInstance, ...)` set it on entry.
export let cv = null;

export function useCv(instance) {
  cv = instance;
}
