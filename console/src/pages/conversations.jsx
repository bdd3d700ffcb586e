// Conversations: every filter of GET /kalimera/conversations, kept in the URL, and a call's
// page with its turns (an audio player each), transcripts, analysis, cost, reason and latency.
import { useEffect, useState } from "preact/hooks";
import { can, get } from "../api.js";
import { href, setParams } from "../route.js";
import { Card, Json, Problem, Tile } from "../ui.jsx";
import { browserZone, count, fixed, int, seconds, useData, when, zones } from "../util.js";

const REASONS = [
  "customer-ended-call", "agent-ended-call", "silence-timeout", "max-duration-reached", "transferred",
  "voicemail", "no-answer", "busy", "failed-to-connect", "error", "unknown", "idle-timeout",
];
const SELECTS = {
  status: ["Active", "Completed", "Failed"],
  profile_type: ["inbound", "outbound"],
  success: ["pass", "fail"],
  sentiment: ["positive", "neutral", "negative", "unknown"],
  ended_reason: REASONS,
};
const FIELDS = ["q", "agent_id", "contact_id", "status", "profile_type", "tz", "start", "end", "success", "ended_reason", "sentiment", "min_duration", "max_duration", "data"];
const DATA_FILTER = /^([A-Za-z_][A-Za-z0-9_]{0,63})=(.+)$/;

/** The list's query: the named filters as they are (the days are local to `tz`, the browser's
 * zone unless the URL names one, as on the overview), and the analysis-data one ("field=value"
 * in the URL) as the API's `data.<field>=<value>`. */
function listQuery(params, page) {
  const { data, ...named } = Object.fromEntries(FIELDS.map((k) => [k, params[k]]));
  const match = DATA_FILTER.exec(data || "");
  return { ...named, tz: named.tz || browserZone(), ...(match ? { [`data.${match[1]}`]: match[2] } : {}), page, limit: 20 };
}

/** The form's values as typed, reset whenever the URL's change: a re-render (the agent list
 * arriving) must not undo what is being typed. */
export function useDraft(params) {
  const [draft, setDraft] = useState(params);
  useEffect(() => setDraft(params), [JSON.stringify(params)]);
  const bind = (name) => ({
    name,
    value: draft[name] || "",
    onInput: (e) => setDraft((d) => ({ ...d, [name]: e.currentTarget.value })),
  });
  return bind;
}

function Filters({ params, tz }) {
  const bind = useDraft({ ...params, tz });
  const agents = useData(() => (can("agents:read") ? get("/kalimera/ai-agent", { limit: 100 }) : Promise.resolve(null)), []);
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setParams({ ...Object.fromEntries(FIELDS.map((k) => [k, form.get(k) || ""])), page: "" });
  };
  return (
    <form class="controls" aria-label="Conversation filters" onSubmit={submit}>
      <label class="grow">
        Words
        <input type="search" {...bind("q")} placeholder="in transcripts or summaries" />
      </label>
      {agents.data && (
        <label>
          Agent
          <select {...bind("agent_id")}>
            <option value="">All</option>
            {agents.data.items.map((a) => (
              <option key={a.id} value={a.id}>{a.name}</option>
            ))}
          </select>
        </label>
      )}
      {Object.entries(SELECTS).map(([name, values]) => (
        <label key={name}>
          {name.replace("_", " ")}
          <select {...bind(name)}>
            <option value="">Any</option>
            {values.map((v) => (
              <option key={v} value={v}>{v}</option>
            ))}
          </select>
        </label>
      ))}
      <label>
        Contact id
        <input type="number" min="1" {...bind("contact_id")} />
      </label>
      <label>
        Time zone
        <select {...bind("tz")}>
          {[...new Set([tz, "UTC", ...zones()])].map((z) => (
            <option key={z} value={z}>{z}</option>
          ))}
        </select>
      </label>
      <label>
        From
        <input type="date" {...bind("start")} />
      </label>
      <label>
        To
        <input type="date" {...bind("end")} />
      </label>
      <label>
        Min s
        <input type="number" min="0" {...bind("min_duration")} />
      </label>
      <label>
        Max s
        <input type="number" min="0" {...bind("max_duration")} />
      </label>
      <label>
        Analysis data
        <input {...bind("data")} placeholder="intent=booking" pattern="[A-Za-z_][A-Za-z0-9_]{0,63}=.+" title="field=value, as the analysis extracted it" />
      </label>
      <button type="submit">Apply</button>
    </form>
  );
}

export function Conversations({ params }) {
  const page = Number(params.page || 1);
  const q = listQuery(params, page);
  const tz = q.tz;
  const { data, error } = useData(() => get("/kalimera/conversations", q), [JSON.stringify(q)]);
  const pages = data ? Math.max(1, Math.ceil(data.total / data.limit)) : 1;
  return (
    <>
      <h1>Conversations</h1>
      <Filters params={params} tz={tz} />
      <Problem error={error} />
      {data && (
        <>
          <p class="lead" data-figure="conversations_total">{count(data.total, "conversation")}</p>
          <div class="scroll">
            <table class="grid" data-table="conversations">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Title</th>
                  <th scope="col">Direction</th>
                  <th scope="col">Status</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Sentiment</th>
                  <th scope="col">Verdict</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((c) => (
                  <tr key={c.id} data-id={c.id}>
                    <td>{when(c.started_at, tz)}</td>
                    <td><a href={href("conversations", {}, c.id)}>{c.title || c.id.slice(0, 8)}</a></td>
                    <td>{c.profile_type}</td>
                    <td>{c.status}</td>
                    <td class="num">{seconds(c.duration)}</td>
                    <td>{c.sentiment}</td>
                    <td>{c.analysis?.success?.result ?? "–"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Result pages">
            {page > 1 && <a href={href("conversations", { ...params, page: page - 1 })}>Previous</a>}
            <span>Page {page} of {pages}</span>
            {page < pages && <a href={href("conversations", { ...params, page: page + 1 })}>Next</a>}
          </nav>
        </>
      )}
    </>
  );
}

function Analysis({ a }) {
  if (!a) return <p class="note">No analysis for this call (it has not ended, or none was asked for).</p>;
  return (
    <dl class="facts" data-analysis={a.status}>
      <dt>Status</dt>
      <dd data-field="analysis_status">{a.status}{a.reason ? ` (${a.reason})` : ""}{a.error ? `: ${a.error}` : ""}</dd>
      {a.summary && (<><dt>Summary</dt><dd data-field="summary">{a.summary}</dd></>)}
      {a.success && (<><dt>Verdict</dt><dd data-field="verdict">{String(a.success.result ?? a.success.score)}{a.success.rationale ? `: ${a.success.rationale}` : ""}</dd></>)}
      {a.sentiment && (<><dt>Sentiment</dt><dd>{a.sentiment.label} ({a.sentiment.score})</dd></>)}
      {a.data && (<><dt>Data</dt><dd><Json value={a.data} /></dd></>)}
      {a.model && (<><dt>Model</dt><dd>{a.model}, {a.input_tokens} in / {a.output_tokens} out tokens</dd></>)}
    </dl>
  );
}

export function Call({ id }) {
  const tz = browserZone();
  const { data: c, error } = useData(() => get(`/kalimera/conversations/${id}`), [id]);
  return (
    <>
      <p><a href={href("conversations")}>← Conversations</a></p>
      <Problem error={error} />
      {c && (
        <>
          <h1>{c.title || "Call"} <small>{c.profile_type}, {c.status}</small></h1>
          <div class="tiles">
            <Tile name="duration" label="Duration" value={seconds(c.duration)} />
            <Tile name="turns" label="Turns" value={int(c.turn_count)} />
            <Tile name="ended_reason" label="Ended reason" value={c.ended_reason || "–"} />
            <Tile name="cost" label="Cost" value={c.cost ? `${fixed(c.cost.total, 4)} ${c.cost.currency}` : "not reported"} />
            <Tile name="latency" label="Latency p50 / p90 / max" value={c.latency.turns ? `${c.latency.p50_ms} / ${c.latency.p90_ms} / ${c.latency.max_ms} ms` : "–"} />
          </div>
          <div class="cards">
            <Card title="Turns" id="turns" wide>
              <ol class="turns">
                {c.turns.map((t) => (
                  <li key={t.seq} class={t.direction} data-seq={t.seq}>
                    <div class="turn-head">
                      <strong>{t.direction === "input" ? "Caller" : "Agent"}</strong> #{t.seq} · {when(t.recorded_at, tz)} · {fixed(t.duration, 1)} s
                      {t.latency_ms !== null && t.latency_ms !== undefined && <> · {t.latency_ms} ms</>}
                    </div>
                    <audio controls preload="none" src={t.audio_url} aria-label={`Turn ${t.seq} audio`} />
                    <p class="transcript">{t.transcript ?? <em>no transcript</em>}</p>
                  </li>
                ))}
              </ol>
            </Card>
            <Card title="Analysis" id="analysis">
              <Analysis a={c.analysis} />
            </Card>
            <Card title="Call" id="facts">
              <dl class="facts">
                <dt>From</dt><dd>{c.from_number || "–"}</dd>
                <dt>To</dt><dd>{c.to_number || "–"}</dd>
                <dt>Language</dt><dd>{c.language || "–"}</dd>
                <dt>Started</dt><dd>{when(c.started_at, tz)}</dd>
                <dt>Ended</dt><dd>{when(c.ended_at, tz)}</dd>
                {c.cost && (<><dt>Cost parts</dt><dd>telephony {c.cost.telephony}, stt {c.cost.stt}, llm {c.cost.llm}, tts {c.cost.tts}, other {c.cost.other}</dd></>)}
              </dl>
            </Card>
          </div>
        </>
      )}
    </>
  );
}
