/**
 * `npm run simulate-call -- --to +15005550006 --say "my name is Alex" --say yes`: try an agent by
 * phone without a phone or Twilio. The caller simulator plays Twilio's part exactly (signed voice
 * webhook, Media Stream with real-time 20 ms μ-law frames) and speaks each --say with espeak-ng, one
 * per agent turn; what the agent said can be saved as a WAV file to listen to.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEV_TWILIO_AUTH_TOKEN, loadConfigOrExit } from '../config';
import { encodeWav } from '../realtime-relay/audio/wav';
import { EspeakTts } from '../realtime-relay/speech/espeak-tts';
import { CachedTts, CallerSimulator } from '../test/peers/caller-simulator';

const LANGUAGE = 'en-US';

const USAGE = `Usage: npm run simulate-call -- --to <number> [options]

Calls a Parley agent the way Twilio would (signed voice webhook, Media Stream, real-time audio),
without a phone or a Twilio account. The caller speaks with espeak-ng.

Options:
  --to <number>       the agent's phone number, E.164 (required)
  --from <number>     the caller's number (default +15557654321)
  --say <text>        what to say, one per agent turn: wait for the agent to finish, then say it
                      (repeatable, in order)
  --dtmf <digits>     keypad presses after the says, one per character of 0-9 * # (repeatable)
  --api <url>         where the api listens (default PUBLIC_BASE_URL, else http://localhost:<API_PORT>)
  --relay <url>       open the media stream here instead of at the <Stream url> the api answers
  --save <file.wav>   write the agent audio you heard to a WAV file (8 kHz mono)
  --timeout <ms>      how long to wait for each agent turn (default 20000)
  --quiet <ms>        silence after which the agent's turn counts as finished (default 600)
  --voice <id>        the caller's espeak-ng voice (default en-us)
  -h, --help          show this help

Webhooks are signed exactly as Twilio signs them, for the URL in PUBLIC_BASE_URL, with
TWILIO_AUTH_TOKEN (environment or .env); unset outside production, the development token that
\`npm start\` gives the api is used, so a local Parley answers without a Twilio account.

Exit codes: 0 the call went as scripted, 1 it did not (webhook error, stream refused, agent silent,
agent hung up early), 2 usage or missing credentials, 78 invalid configuration, 130 interrupted.`;

class UsageError extends Error {}

interface Options {
  to: string;
  from: string;
  says: string[];
  digits: string[];
  api?: string;
  relay?: string;
  save?: string;
  timeoutMs: number;
  quietMs: number;
  voice: string;
}

function parseOptions(argv: string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        to: { type: 'string' },
        from: { type: 'string', default: '+15557654321' },
        say: { type: 'string', multiple: true, default: [] },
        dtmf: { type: 'string', multiple: true, default: [] },
        api: { type: 'string' },
        relay: { type: 'string' },
        save: { type: 'string' },
        timeout: { type: 'string', default: '20000' },
        quiet: { type: 'string', default: '600' },
        voice: { type: 'string', default: 'en-us' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  if (!values.to) throw new UsageError('--to is required (the number the agent answers)');
  const digits = values.dtmf.join('').split('');
  const badDigit = digits.find((d) => !/^[0-9*#]$/.test(d));
  if (badDigit !== undefined) throw new UsageError(`--dtmf takes 0-9, * and #, not '${badDigit}'`);
  for (const [flag, url] of [
    ['--api', values.api],
    ['--relay', values.relay],
  ] as const) {
    if (url !== undefined && !URL.canParse(url)) throw new UsageError(`${flag} must be a URL, got '${url}'`);
  }
  return {
    to: values.to,
    from: values.from,
    says: values.say,
    digits,
    api: values.api,
    relay: values.relay,
    save: values.save,
    timeoutMs: positiveInteger('--timeout', values.timeout),
    quietMs: positiveInteger('--quiet', values.quiet),
    voice: values.voice,
  };
}

function positiveInteger(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`${flag} must be a positive number of ms, got '${value}'`);
  return n;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

const startedAt = performance.now();
function log(line: string, stream: NodeJS.WriteStream = process.stdout): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(2).padStart(6);
  stream.write(`[${seconds}s] ${line}\n`);
}

async function run(options: Options): Promise<number> {
  const config = loadConfigOrExit();
  const development = config.NODE_ENV !== 'production';
  const authToken = config.TWILIO_AUTH_TOKEN ?? (development ? DEV_TWILIO_AUTH_TOKEN : undefined);
  if (!authToken) {
    process.stderr.write(
      'simulate-call: TWILIO_AUTH_TOKEN is not set.\n' +
        'The simulator signs its webhooks as Twilio does, with the token the api verifies them\n' +
        'against: set TWILIO_AUTH_TOKEN in .env or the environment.\n',
    );
    return 2;
  }
  const accountSid = config.TWILIO_ACCOUNT_SID ?? `AC${'0'.repeat(32)}`;
  const apiBaseUrl = options.api ?? config.PUBLIC_BASE_URL;
  // Synthesized before dialling, so no espeak-ng process starts mid-call (it would stall the frame
  // clock) and each answer can start as soon as the agent's turn ends.
  const tts = new CachedTts(new EspeakTts());
  await tts.warm(options.says, options.voice, LANGUAGE);
  const simulator = new CallerSimulator({
    tts,
    language: LANGUAGE,
    apiBaseUrl,
    // The api checks signatures against its public URL, whatever address we reach it on.
    publicBaseUrl: config.PUBLIC_BASE_URL,
    accountSid,
    authToken,
    voiceId: options.voice,
    streamOrigin: options.relay,
  });

  log(`dialling ${options.to} from ${options.from} (${apiBaseUrl})`);
  const dialStart = performance.now();
  const call = await simulator.dial({ from: options.from, to: options.to });
  const answer =
    call.outcome === 'stream' ? `<Connect><Stream url="${call.streamUrl}">` : 'no stream, the call ends';
  log(`TwiML answer in ${Math.round(performance.now() - dialStart)} ms: ${answer}`);
  const reportSaid = (from: number) => {
    for (const text of call.said.slice(from)) log(`agent <Say>: "${text}"`);
    return call.said.length;
  };
  let saidShown = reportSaid(0);
  if (call.outcome === 'hangup') {
    await call.hangup();
    log('the agent hung up without opening a media stream');
    // A script with lines left to say did not go as planned.
    return options.says.length + options.digits.length > 0 ? 1 : 0;
  }
  const streamOpenedAt = Date.now();
  log(`stream open: ${call.streamSid} (call ${call.callSid})`);

  let weHungUp = false;
  void call.closed.then(({ code, reason }) => {
    if (weHungUp) return;
    log(`the agent ended the stream (${code}${reason ? ` ${reason}` : ''})`);
    saidShown = reportSaid(saidShown);
  });
  process.once('SIGINT', () => {
    log('interrupted: hanging up');
    weHungUp = true;
    void call.hangup().finally(() => process.exit(130));
  });
  /** True once the socket has closed: `closed` settles before any timer callback runs. */
  const streamEnded = () =>
    Promise.race([
      call.closed.then(() => true),
      new Promise<boolean>((resolve) => setImmediate(() => resolve(false))),
    ]);

  let lastSpokeAt = streamOpenedAt;
  let lastSpokeWhat = 'the stream opened';
  /** The agent's next turn: false (after saying why) when it stayed silent past --timeout. */
  const agentTurn = async (): Promise<boolean> => {
    try {
      const turn = await call.waitForAgentTurn({ timeoutMs: options.timeoutMs, quietMs: options.quietMs });
      log(
        `agent spoke ${Math.round(turn.audioMs)} ms of audio ` +
          `(started ${turn.startedAt - lastSpokeAt} ms after ${lastSpokeWhat})`,
      );
      return true;
    } catch (err) {
      // Hanging up without a word is the agent's choice, not a failure of the call.
      if (await streamEnded()) return true;
      log(`error: ${(err as Error).message}`, process.stderr);
      return false;
    }
  };
  /** What the script still wanted to do when the agent hung up (logged as a failure). */
  const cutShort = async (left: string): Promise<boolean> => {
    if (!(await streamEnded())) return false;
    log(`the agent hung up before you ${left}`);
    return true;
  };

  const ok = await (async () => {
    for (const [i, text] of options.says.entries()) {
      if (!(await agentTurn())) return false;
      const rest = options.says.slice(i).map((t) => `"${t}"`);
      if (await cutShort(`said ${rest.join(', ')}`)) return false;
      const spoken = await call.say(text).catch(async (err: unknown) => {
        if (await streamEnded()) return undefined;
        throw err;
      });
      if (!spoken) {
        log(`the agent hung up while you were saying "${text}"`);
        return false;
      }
      lastSpokeAt = spoken.endedAt;
      lastSpokeWhat = 'you stopped speaking';
      log(`you said "${text}" (${Math.round(spoken.ms)} ms of speech)`);
    }
    // The agent's answer to the last thing said (its greeting, when there was nothing to say).
    if (!(await agentTurn())) return false;
    if (options.digits.length === 0) return true;
    if (await cutShort('pressed the --dtmf digits')) return false;
    // The agent may answer the first key before the last is pressed: its reply is timed from the first.
    lastSpokeAt = Date.now();
    lastSpokeWhat = 'your first key press';
    for (const digit of options.digits) {
      call.sendDtmf(digit);
      log(`you pressed ${digit}`);
      // People press keys a few hundred ms apart; back-to-back events read like a stuck key.
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return agentTurn();
  })();

  if (await streamEnded()) {
    await call.hangup(); // waits for the status callback Twilio posts when the call ends
    log('call ended (status callback: completed)');
  } else {
    weHungUp = true;
    await call.hangup();
    log('you hung up (status callback: completed)');
  }

  const { stats } = call;
  log(
    `agent audio: ${Math.round(stats.audioMsReceived)} ms received, ${Math.round(stats.audioMsPlayed)} ms heard, ` +
      `${stats.clears.length} clear(s), ${stats.marksEchoed.length} mark(s) echoed` +
      (stats.malformedMessagesIn ? `, ${stats.malformedMessagesIn} malformed message(s)` : ''),
  );
  log(
    `you sent ${stats.framesSent} frames; send lateness p50 ${percentile(stats.lastFrameLateMs, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(stats.lastFrameLateMs, 99).toFixed(1)} ms`,
  );
  if (options.save) {
    const heard = call.heardAudio();
    writeFileSync(options.save, encodeWav([heard], 8000));
    log(`saved ${Math.round(heard.length / 8)} ms of agent audio to ${options.save}`);
  }
  return ok ? 0 : 1;
}

async function main(): Promise<void> {
  let options: Options | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`simulate-call: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    process.exit(await run(options));
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`, process.stderr);
    process.exit(1);
  }
}

void main();
