/**
 * A real browser for the dashboard's end-to-end tests: Debian's Chromium (never a downloaded one)
 * driven by playwright-core, headless, with a fake microphone for browser voice calls. Screenshots go
 * under test-output/e2e/<suite>/, numbered in the order they were taken.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { encodeWav } from '../../realtime-relay/audio/wav';
import { EspeakTts } from '../../realtime-relay/speech/espeak-tts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Options of the browser: a WAV file the fake microphone plays in a loop (default: a beeping tone). */
export async function launchChromium(options: { microphoneWav?: string } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: npm test installs Debian's chromium (apt-get install chromium)`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      // This machine has no internet: Chromium's own background traffic would only be refused.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      // A fake microphone (a beeping tone) that needs no permission prompt, for browser voice calls.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...(options.microphoneWav ? [`--use-file-for-fake-audio-capture=${options.microphoneWav}`] : []),
    ],
  });
}

/** Saves numbered full-page screenshots of one suite under test-output/e2e/<suite>/. */
export class Screenshots {
  readonly dir: string;
  private n = 0;

  constructor(suite: string) {
    this.dir = path.resolve(__dirname, '../../test-output/e2e', suite);
    mkdirSync(this.dir, { recursive: true });
  }

  async take(page: Page, name: string): Promise<string> {
    this.n += 1;
    const file = path.join(this.dir, `${String(this.n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }
}

/**
 * Every visible form control, button and link on the page has an accessible name (a label, an
 * aria-label / aria-labelledby, or its own text); returns a description of each one that does not.
 */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(UNLABELLED_CONTROLS);
}

/** Runs in the page (plain JavaScript: this file is compiled without the DOM's types). */
const UNLABELLED_CONTROLS = `(() => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  };
  const text = (s) => (s || '').replace(/\\s+/g, ' ').trim();
  const nameOf = (el) => {
    const aria = text(el.getAttribute('aria-label'));
    if (aria) return aria;
    const labelledBy = el.getAttribute('aria-labelledby');
    if (labelledBy) {
      const byIds = labelledBy.split(/\\s+/).map((id) => text(document.getElementById(id)?.textContent)).join(' ').trim();
      if (byIds) return byIds;
    }
    if (el.labels && el.labels.length) {
      const fromLabels = Array.from(el.labels).map((l) => text(l.textContent)).join(' ').trim();
      if (fromLabels) return fromLabels;
    }
    if (el.tagName === 'BUTTON' || el.tagName === 'A' || el.getAttribute('role') === 'tab') {
      const own = text(el.textContent);
      if (own) return own;
    }
    return text(el.getAttribute('title'));
  };
  const missing = [];
  document
    .querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href], [role=button], [role=tab]')
    .forEach((el) => {
      if (!visible(el) || el.closest('[aria-hidden=true]')) return;
      if (!nameOf(el)) {
        const html = el.outerHTML.replace(/\\s+/g, ' ');
        missing.push(html.length > 160 ? html.slice(0, 160) + '…' : html);
      }
    });
  return missing;
})()`;

/** Waits until the locator's text matches (playwright-core has no expect of its own). */
export async function waitForText(locator: Locator, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let seen = '(the element never appeared)';
  for (;;) {
    const text = await locator
      .innerText({ timeout: Math.max(100, deadline - Date.now()) })
      .catch(() => undefined);
    if (text !== undefined) seen = text;
    if (text !== undefined && pattern.test(text)) return text;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${String(pattern)}; the text was: ${seen.slice(0, 600)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A WAV for the fake microphone: `leadSeconds` of silence, then `words` spoken by espeak-ng, then
 * `tailSeconds` of silence (Chromium loops the file, so the caller says it again after that).
 */
export async function spokenWav(
  file: string,
  words: string,
  { leadSeconds, tailSeconds }: { leadSeconds: number; tailSeconds: number },
): Promise<string> {
  const rate = 8_000;
  const speech = await new EspeakTts().synthesize({ text: words, voiceId: 'en-us', language: 'en-US' });
  const audio = new Int16Array(Math.round((leadSeconds + tailSeconds) * rate) + speech.length);
  audio.set(speech, Math.round(leadSeconds * rate));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, encodeWav([audio], rate));
  return file;
}
