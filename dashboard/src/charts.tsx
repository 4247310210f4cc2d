/**
 * Charts drawn as SVG with no charting library: bars (optionally stacked), lines, and a horizontal
 * funnel. Each is a `figure` with a caption and an accessible summary; a legend names every series,
 * and hovering a mark shows its value (`<title>`).
 */
import type { ReactNode } from 'react';

export const PALETTE = [
  '#2563eb',
  '#16a34a',
  '#f59e0b',
  '#dc2626',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#64748b',
];

export interface Series {
  name: string;
  values: (number | null)[];
  color?: string;
}

const W = 640;
const H = 220;
const PAD = { top: 12, right: 12, bottom: 36, left: 52 };

/** A round step (1, 2 or 5 × 10ⁿ) giving about four gridlines up to the data's maximum. */
function niceStep(max: number): number {
  if (max <= 0) return 1;
  const rough = max / 4;
  const exp = Math.pow(10, Math.floor(Math.log10(rough)));
  const f = rough / exp;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
}

/** The axis top (a whole number of steps) for data up to `max`; counts keep whole-number steps. */
function niceMax(max: number, integers = false): number {
  const step = integers ? Math.max(1, niceStep(max)) : niceStep(max);
  return Math.max(step, Math.ceil(max / step) * step);
}

function Legend({ series }: { series: Series[] }) {
  if (series.length < 2) return null;
  return (
    <ul className="legend">
      {series.map((s, i) => (
        <li key={s.name}>
          <span
            className="swatch"
            style={{ background: s.color ?? PALETTE[i % PALETTE.length] }}
            aria-hidden="true"
          />
          {s.name}
        </li>
      ))}
    </ul>
  );
}

function Frame({
  title,
  summary,
  children,
  series,
}: {
  title: string;
  summary: string;
  children: ReactNode;
  series: Series[];
}) {
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}. ${summary}`}
        preserveAspectRatio="none"
      >
        {children}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

function Axes({ max, labels, format }: { max: number; labels: string[]; format: (v: number) => string }) {
  const innerH = H - PAD.top - PAD.bottom;
  const innerW = W - PAD.left - PAD.right;
  const step = niceStep(max);
  const count = Math.max(1, Math.round(max / step));
  const fine = Array.from({ length: count + 1 }, (_, i) => i / count);
  // Fewer gridlines when a small scale would print the same label twice (0 ms, 0 ms, 1 ms…).
  const ticks = new Set(fine.map((t) => format(max * t))).size === fine.length ? fine : [0, 1];
  const every = Math.max(1, Math.ceil(labels.length / 10));
  return (
    <g className="axes">
      {ticks.map((t) => {
        const y = PAD.top + innerH * (1 - t);
        return (
          <g key={t}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} className="grid" />
            <text x={PAD.left - 6} y={y + 4} textAnchor="end">
              {format(max * t)}
            </text>
          </g>
        );
      })}
      {labels.map((label, i) =>
        i % every === 0 ? (
          <text
            key={i}
            x={PAD.left + (innerW * (i + 0.5)) / labels.length}
            y={H - PAD.bottom + 16}
            textAnchor="middle"
          >
            {label}
          </text>
        ) : null,
      )}
    </g>
  );
}

/** Bars per label; several series stack (a turn's latency by stage, calls by outcome per day). */
export function BarChart({
  title,
  labels,
  series,
  format = (v) => String(Math.round(v)),
}: {
  title: string;
  labels: string[];
  series: Series[];
  format?: (v: number) => string;
}) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const top = Math.max(0, ...totals);
  const max = niceMax(
    top,
    totals.every((v) => Number.isInteger(v)),
  );
  const innerH = H - PAD.top - PAD.bottom;
  const innerW = W - PAD.left - PAD.right;
  const slot = innerW / Math.max(1, labels.length);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const summary = labels.length
    ? labels.map((l, i) => `${l}: ${format(totals[i] ?? 0)}`).join('; ')
    : 'No data';
  return (
    <Frame title={title} summary={summary} series={series}>
      <Axes max={max} labels={labels} format={format} />
      {labels.map((label, i) => {
        let y = PAD.top + innerH;
        return (
          <g key={i}>
            {series.map((s, j) => {
              const v = s.values[i] ?? 0;
              const h = (v / max) * innerH;
              y -= h;
              return (
                <rect
                  key={s.name}
                  x={PAD.left + slot * i + (slot - barW) / 2}
                  y={y}
                  width={barW}
                  height={Math.max(0, h)}
                  fill={s.color ?? PALETTE[j % PALETTE.length]}
                >
                  <title>{`${label} · ${s.name}: ${format(v)}`}</title>
                </rect>
              );
            })}
          </g>
        );
      })}
    </Frame>
  );
}

/** Lines over labels (null: no point that day). */
export function LineChart({
  title,
  labels,
  series,
  format = (v) => String(Math.round(v)),
}: {
  title: string;
  labels: string[];
  series: Series[];
  format?: (v: number) => string;
}) {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = niceMax(
    Math.max(0, ...all),
    all.every((v) => Number.isInteger(v)),
  );
  const innerH = H - PAD.top - PAD.bottom;
  const innerW = W - PAD.left - PAD.right;
  const x = (i: number) => PAD.left + (innerW * (i + 0.5)) / Math.max(1, labels.length);
  const y = (v: number) => PAD.top + innerH * (1 - v / max);
  const summary = series
    .map(
      (s) =>
        `${s.name}: ${s.values.map((v, i) => `${labels[i]} ${v === null ? 'none' : format(v)}`).join(', ')}`,
    )
    .join('. ');
  return (
    <Frame title={title} summary={summary || 'No data'} series={series}>
      <Axes max={max} labels={labels} format={format} />
      {series.map((s, j) => {
        const color = s.color ?? PALETTE[j % PALETTE.length];
        const points = s.values
          .map((v, i) => (v === null ? null : `${x(i)},${y(v)}`))
          .filter((p): p is string => p !== null);
        return (
          <g key={s.name}>
            <polyline points={points.join(' ')} fill="none" stroke={color} strokeWidth={2} />
            {s.values.map((v, i) =>
              v === null ? null : (
                <circle key={i} cx={x(i)} cy={y(v)} r={3} fill={color}>
                  <title>{`${labels[i]} · ${s.name}: ${format(v)}`}</title>
                </circle>
              ),
            )}
          </g>
        );
      })}
    </Frame>
  );
}

/** Horizontal bars, widest first: a campaign's funnel, an outcome mix. */
export function FunnelChart({
  title,
  steps,
}: {
  title: string;
  steps: { label: string; value: number; color?: string }[];
}) {
  const max = Math.max(1, ...steps.map((s) => s.value));
  return (
    <figure className="chart funnel" aria-label={title}>
      <figcaption>{title}</figcaption>
      <ul>
        {steps.map((s, i) => (
          <li key={s.label}>
            <span className="funnel-label">{s.label}</span>
            <span className="funnel-track">
              <span
                className="funnel-bar"
                style={{
                  width: `${(100 * s.value) / max}%`,
                  background: s.color ?? PALETTE[i % PALETTE.length],
                }}
              />
            </span>
            <span className="funnel-value">{s.value}</span>
          </li>
        ))}
      </ul>
    </figure>
  );
}
