/**
 * Turns a model's streamed token deltas into speakable chunks, so text-to-speech can start on the
 * first sentence while the model is still writing the rest. Cuts after a sentence end (. ! ? followed
 * by whitespace), at line breaks, and, once the pending text grows long, after a clause (, ; :) so a
 * long sentence does not hold the caller in silence. Never cuts inside "3.5", "1,000", "Dr. Smith" or
 * "e.g. this", nor after a list marker ("1.").
 */

export interface SentenceChunkerOptions {
  /** Shorter chunks are held and joined to the next one (except at flush). Default 2. */
  minChars?: number;
  /** Past this many pending characters, clause punctuation also cuts. Default 120. */
  maxChars?: number;
}

/** Lower-cased words that end in a full stop without ending the sentence. */
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'prof',
  'st',
  'sr',
  'jr',
  'vs',
  'approx',
  'dept',
  'mt',
  'ft',
  'e.g',
  'i.e',
  'cf',
]);
/** Abbreviations that often end a sentence too ("…at 3 p.m. See you"): a capital after them cuts. */
const AMBIGUOUS_ABBREVIATIONS = new Set([
  'a.m',
  'p.m',
  'etc',
  'no',
  'inc',
  'ltd',
  'co',
  'corp',
  'u.s',
  'jan',
  'feb',
  'mar',
  'apr',
  'jun',
  'jul',
  'aug',
  'sep',
  'sept',
  'oct',
  'nov',
  'dec',
]);
const SENTENCE_END = /[.!?]/;
const CLAUSE_END = /[,;:]/;
/** Closing quotes and brackets that belong to the sentence before the cut. */
const CLOSERS = /["'\u201d\u2019)\]]/;

export class SentenceChunker {
  private readonly minChars: number;
  private readonly maxChars: number;
  private pending = '';

  constructor(opts: SentenceChunkerOptions = {}) {
    this.minChars = opts.minChars ?? 2;
    this.maxChars = opts.maxChars ?? 120;
  }

  push(delta: string): string[] {
    this.pending += delta;
    const chunks: string[] = [];
    for (let cut = this.findCut(); cut !== undefined; cut = this.findCut()) {
      const chunk = this.pending.slice(0, cut).trim();
      this.pending = this.pending.slice(cut);
      if (chunk) chunks.push(chunk);
    }
    return chunks;
  }

  /** Everything still pending, as the last chunk (even when shorter than minChars). */
  flush(): string[] {
    const rest = this.pending.trim();
    this.pending = '';
    return rest ? [rest] : [];
  }

  /**
   * The end of the next chunk in `pending`, or undefined if no cut is possible yet. Pending text is
   * at most a few sentences long, so scanning it again on each delta costs nothing worth saving.
   */
  private findCut(): number | undefined {
    const text = this.pending;
    let clauseCut: number | undefined;
    // A cut needs to see the character after the punctuation, so the last one never decides.
    for (let i = 0; i < text.length - 1; i++) {
      const ch = text[i]!;
      if (ch === '\n') {
        if (this.longEnough(i)) return i + 1;
        continue;
      }
      const sentence = SENTENCE_END.test(ch);
      if (!sentence && !CLAUSE_END.test(ch)) continue;
      let end = i + 1;
      while (end < text.length && (CLOSERS.test(text[end]!) || SENTENCE_END.test(text[end]!))) end++;
      if (end >= text.length) break; // wait for what follows: "3." may become "3.5"
      if (!/\s/.test(text[end]!)) continue; // "3.5", "1,000", "e.g"
      if (sentence) {
        if (ch === '.' && !this.endsSentence(i, end)) continue;
        if (this.longEnough(end)) return end;
      } else if (this.longEnough(end)) {
        clauseCut = end;
      }
      i = end - 1;
    }
    if (text.length <= this.maxChars) return undefined;
    if (clauseCut !== undefined) return clauseCut;
    // A run-on without any punctuation: past twice the limit, cut between words rather than wait.
    if (text.length > 2 * this.maxChars) {
      const space = text.trimEnd().lastIndexOf(' ');
      if (space > 0 && this.longEnough(space)) return space + 1;
    }
    return undefined;
  }

  private longEnough(end: number): boolean {
    return this.pending.slice(0, end).trim().length >= this.minChars;
  }

  /**
   * Whether the full stop at `dot` ends a sentence: not after "Dr.", "e.g.", an initial ("J.") or a
   * list marker ("1."); after "p.m.", "No." and the like only when a capital letter follows.
   */
  private endsSentence(dot: number, next: number): boolean {
    const before = this.pending.slice(0, dot);
    const word = /(\S+)$/.exec(before)?.[1] ?? '';
    const bare = word.replace(/^["'(\u201c\u2018[]+/, '').toLowerCase();
    if (ABBREVIATIONS.has(bare)) return false;
    if (AMBIGUOUS_ABBREVIATIONS.has(bare)) return /^\s*[\p{Lu}"\u201c]/u.test(this.pending.slice(next));
    if (/^\p{L}$/u.test(bare)) return false;
    if (/^\d+$/.test(bare) && /(^|\n)\s*$/.test(before.slice(0, before.length - word.length))) return false;
    return true;
  }
}
