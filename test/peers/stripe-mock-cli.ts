/** `npm run stripe-mock`: finds or builds stripe-mock (go install, pinned) and prints where it is. */
import { locateStripeMock } from './stripe-mock';

locateStripeMock(console.log)
  .then((binary) => console.log(`stripe-mock: ${binary}`))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
