// Entry point for running the CLI from source (tests spawn it with `node --import tsx`).
import { runAsProcess } from './main.js';

await runAsProcess(process.argv);
