// Entry point for running the CLI from source (tests spawn it with `node --import tsx`).
import { noteEarlySignals } from './early-signals.js';

noteEarlySignals();
const { runAsProcess } = await import('./main.js');
await runAsProcess(process.argv);
