// Entry point for running the CLI from source (tests spawn it with `node --import tsx`).
import { main } from './main.js';

process.exitCode = await main(process.argv);
