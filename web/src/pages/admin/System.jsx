// System.jsx: the operator's view (admins only, loaded on demand with its
// chart library, uPlot): each service's pool over time: its workers (watch an
// ondemand pool scale to zero and wake), requests per second, errors, and
// latency percentiles from the handlers' histograms. It polls
// GET /api/<svc>/admin/status (the pool's scoreboard, for an admin's token;
// the internal listener is never asked from a browser). Reading the
// scoreboard is itself a request that a worker answers, so the worker busy
// answering it is left out of "workers serving others", and the counters of
// its own handler (admin_status) are left out of the rates.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useQueries } from '@tanstack/react-query';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { system } from '../../api.js';
import { Notice } from '../../components/UI.jsx';
import { humanError } from '../../lib/errors.js';
import { useTitle } from '../../lib/store.js';

// services/list, put in by the build (vite.config.js)
const SERVICES = __PL_SERVICES__;
const KEEP = 180; // samples per service
const WINDOW_S = 300; // the charts' time span
const SELF = 'admin_status';

function sum(obj, f) {
  return Object.entries(obj || {}).reduce((a, [k, v]) => a + f(k, v), 0);
}

/** One sample from a scoreboard: what the charts need, without this page's own requests. */
function sample(st) {
  const handlers = Object.entries(st.handlers || {}).filter(([name]) => name !== SELF);
  const buckets = new Array((st.bucket_bounds_us || []).length).fill(0);
  let requests = 0;
  let errors = 0;
  for (const [, h] of handlers) {
    requests += h.invocations;
    errors += sum(h.statuses, (code, n) => (Number(code) >= 500 ? n : 0));
    (h.buckets || []).forEach((n, i) => {
      buckets[i] += n;
    });
  }
  const mine = (st.worker_list || []).filter((w) => w.state === 'busy' && w.handler === SELF).length;
  return {
    t: Date.now() / 1000,
    total: st.workers.total,
    others: Math.max(0, st.workers.total - Math.min(mine, 1)),
    busy: Math.max(0, st.workers.busy - Math.min(mine, 1)),
    idle: st.workers.idle,
    requests,
    errors,
    buckets,
    bounds: st.bucket_bounds_us || [],
    spawns: st.counters.spawns,
    idleExits: st.counters.idle_exits,
  };
}

/** The q-quantile (ms) of a histogram's counts, by its buckets' upper bounds. */
function quantile(counts, bounds, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= q * total) return (bounds[i] ?? bounds[bounds.length - 2] * 2) / 1000;
  }
  return null;
}

/** Rows for the charts: x, workers, busy, rps, errors/s, p50, p95, p99, spawns, idle exits. */
function derive(samples) {
  const cols = [[], [], [], [], [], [], [], [], [], []];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = Math.max(0.001, b.t - a.t);
    const reset = b.requests < a.requests; // a restarted pool starts its counters again
    const delta = b.buckets.map((n, k) => (reset ? n : Math.max(0, n - (a.buckets[k] || 0))));
    cols[0].push(b.t);
    cols[1].push(b.others);
    cols[2].push(b.busy);
    cols[3].push((reset ? b.requests : b.requests - a.requests) / dt);
    cols[4].push((reset ? b.errors : b.errors - a.errors) / dt);
    cols[5].push(quantile(delta, b.bounds, 0.5));
    cols[6].push(quantile(delta, b.bounds, 0.95));
    cols[7].push(quantile(delta, b.bounds, 0.99));
    cols[8].push(reset ? 0 : b.spawns - a.spawns);
    cols[9].push(reset ? 0 : b.idleExits - a.idleExits);
  }
  return cols;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function Chart({ title, data, series, unit, describe }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    const ink = cssVar('--text-muted');
    const grid = cssVar('--border');
    plot.current = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 160,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        // x: seconds before the newest reading, over a fixed window; y: from 0
        scales: {
          x: { time: false, range: () => [-WINDOW_S, 0] },
          y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)] },
        },
        axes: [
          {
            stroke: ink,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid },
            values: (u, v) => v.map((x) => (x === 0 ? 'now' : `${Math.round(-x / 60) >= 1 && x % 60 === 0 ? `${-x / 60} min` : `${Math.round(-x)} s`}`)),
          },
          { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 64, values: (u, v) => v.map((x) => `${+x.toFixed(2)}${unit}`) },
        ],
        series: [{ label: 'Age', value: (u, v) => (v == null ? '–' : `${Math.round(-v)} s ago`) }, ...series.map((s) => ({ label: s.label, stroke: cssVar(s.color), width: 2, points: { show: false }, spanGaps: true }))],
      },
      [[], ...series.map(() => [])],
      el,
    );
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: Math.max(240, el.clientWidth), height: 160 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (!plot.current) return;
    const xs = data[0];
    const newest = xs.length ? xs[xs.length - 1] : 0;
    plot.current.setData([xs.map((t) => t - newest), ...data.slice(1)]);
  }, [data]);
  return (
    <figure className="chart">
      <figcaption>
        <span className="chart-title">{title}</span>
        <span className="sr-only">{describe}</span>
      </figcaption>
      <div ref={box} className="chart-box" aria-hidden="true" />
    </figure>
  );
}

const fmt = (v, unit = '') => (v === null || v === undefined || Number.isNaN(v) ? '–' : `${+v.toFixed(v < 10 ? 2 : 0)}${unit}`);

function ServicePanel({ name, status, samples, error }) {
  const cols = useMemo(() => derive(samples), [samples]);
  const last = (i) => (cols[i].length ? cols[i][cols[i].length - 1] : null);
  return (
    <section className="card service-panel" aria-labelledby={`svc-${name}`} data-service={name}>
      <header className="service-head">
        <h2 id={`svc-${name}`}>{name}</h2>
        {status && (
          <span className="muted small">
            {status.mode} · at most {status.max_children} workers · up {Math.round(status.uptime_s / 60)} min
          </span>
        )}
      </header>
      {error && <Notice tone="error">{humanError(error)}</Notice>}
      <dl className="stats">
        <div>
          <dt>Workers serving others</dt>
          <dd data-stat="workers">{samples.length ? samples[samples.length - 1].others : '–'}</dd>
        </div>
        <div>
          <dt>Requests/s</dt>
          <dd data-stat="rps">{fmt(last(3))}</dd>
        </div>
        <div>
          <dt>p95 latency</dt>
          <dd data-stat="p95">{fmt(last(6), ' ms')}</dd>
        </div>
        <div>
          <dt>Errors/s</dt>
          <dd data-stat="errors">{fmt(last(4))}</dd>
        </div>
      </dl>
      <div className="charts">
        <Chart
          title="Workers"
          unit=""
          data={[cols[0], cols[1], cols[2], cols[8], cols[9]]}
          series={[
            { label: 'workers', color: '--chart-1' },
            { label: 'busy', color: '--chart-2' },
            { label: 'started', color: '--chart-3' },
            { label: 'idle exits', color: '--chart-4' },
          ]}
          describe={`${samples.length ? samples[samples.length - 1].others : 0} workers now besides this page's reading.`}
        />
        <Chart
          title="Requests and errors per second"
          unit=""
          data={[cols[0], cols[3], cols[4]]}
          series={[
            { label: 'requests/s', color: '--chart-1' },
            { label: 'errors/s', color: '--chart-err' },
          ]}
          describe={`${fmt(last(3))} requests per second, ${fmt(last(4))} errors per second.`}
        />
        <Chart
          title="Latency"
          unit=" ms"
          data={[cols[0], cols[5], cols[6], cols[7]]}
          series={[
            { label: 'p50', color: '--chart-1' },
            { label: 'p95', color: '--chart-2' },
            { label: 'p99', color: '--chart-err' },
          ]}
          describe={`p50 ${fmt(last(5), ' ms')}, p95 ${fmt(last(6), ' ms')}, p99 ${fmt(last(7), ' ms')}.`}
        />
      </div>
    </section>
  );
}

const INTERVALS = [
  [2000, 'every 2 s'],
  [5000, 'every 5 s'],
  [15000, 'every 15 s (lets idle pools scale to zero)'],
];

export default function SystemPage() {
  useTitle('System · Admin');
  const [every, setEvery] = useState(2000);
  const [paused, setPaused] = useState(false);
  const history = useRef(Object.fromEntries(SERVICES.map((s) => [s, []])));
  const [, setTick] = useState(0);
  const results = useQueries({
    queries: SERVICES.map((svc) => ({
      queryKey: ['system', svc],
      queryFn: () => system.status(svc),
      refetchInterval: paused ? false : every,
      refetchIntervalInBackground: false,
      staleTime: 0,
      gcTime: 0,
      retry: false,
    })),
  });
  const stamps = results.map((r) => r.dataUpdatedAt).join(',');
  useEffect(() => {
    results.forEach((r, i) => {
      if (!r.data) return;
      const list = history.current[SERVICES[i]];
      const s = sample(r.data);
      if (list.length && list[list.length - 1].stamp === r.dataUpdatedAt) return;
      s.stamp = r.dataUpdatedAt;
      list.push(s);
      if (list.length > KEEP) list.shift();
    });
    setTick((n) => n + 1);
  }, [stamps]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <section className="admin-section system" aria-labelledby="system-title">
      <div className="toolbar">
        <h2 id="system-title" className="toolbar-title">
          Service pools, live
        </h2>
        <label className="inline-field">
          <span>Update</span>
          <select value={every} onChange={(e) => setEvery(Number(e.target.value))}>
            {INTERVALS.map(([ms, label]) => (
              <option key={ms} value={ms}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn btn-small" onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      </div>
      <p className="muted small">
        Each reading is a request a worker answers: an ondemand pool wakes for it and ends that worker after its idle time.
        Read every 15 s to watch a pool go to zero workers between readings (“idle exits”) and start one again (“started”).
      </p>
      <div className="service-grid">
        {SERVICES.map((svc, i) => (
          <ServicePanel key={svc} name={svc} status={results[i].data} samples={[...history.current[svc]]} error={results[i].error} />
        ))}
      </div>
    </section>
  );
}
