// An agent's page: each of its thirteen sections as formatted JSON, edited one at a time with
// If-Match (the ETag of the read shown). A stale edit (412: someone saved since) says so and
// offers to reload. Secrets arrive masked ("********"); sending the mask back keeps the stored
// value, so a secret changes only when a new one is typed.
import { useEffect, useState } from "preact/hooks";
import { can, getTagged, request } from "../api.js";
import { href } from "../route.js";
import { Card, Json, Problem } from "../ui.jsx";
import { useDraft } from "./conversations.jsx";
import { localDate, useData, when } from "../util.js";

const SECTIONS = [
  "ai_hub", "audio_server", "azure", "eleven_labs_tts", "call_processing", "redis", "knowledge_base",
  "background_audio", "web_talk", "experimental_features", "serilog", "logging", "allowed_hosts",
];
export const MASK = "********";

async function read(id) {
  const { data, etag } = await getTagged(`/kalimera/ai-agent/${id}`);
  return { agent: data, etag };
}

function Section({ name, value, etag, agentId, onSaved, onStale }) {
  const [text, setText] = useState(null);
  const [state, setState] = useState({ error: null, saving: false });
  const editing = text !== null;
  const save = async (e) => {
    e.preventDefault();
    let body;
    try {
      body = JSON.parse(text);
    } catch (err) {
      setState({ error: `Not JSON: ${err.message}`, saving: false });
      return;
    }
    setState({ error: null, saving: true });
    try {
      await request("PUT", `/kalimera/ai-agent/${agentId}/${name}`, { body, headers: { "If-Match": etag } });
      setText(null);
      setState({ error: null, saving: false });
      onSaved();
    } catch (err) {
      if (err.status === 412) onStale(name);
      const detail = err.problem?.errors?.map((x) => `${(x.loc || []).join(".")}: ${x.msg}`).join("; ");
      setState({ error: detail || err.message, saving: false });
    }
  };
  return (
    <section class="section" data-section={name} aria-labelledby={`s-${name}`}>
      <div class="section-head">
        <h3 id={`s-${name}`}>{name}</h3>
        {!editing && can("agents:write") && (
          <button type="button" onClick={() => setText(JSON.stringify(value, null, 2))}>
            Edit
          </button>
        )}
      </div>
      {editing ? (
        <form onSubmit={save}>
          <label class="sr" for={`e-${name}`}>{name} as JSON</label>
          <textarea id={`e-${name}`} name="section" rows={Math.min(20, text.split("\n").length + 1)} value={text} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} />
          <p class="note">Secrets show as {MASK}: leave one so to keep it, type a new value to replace it.</p>
          <div class="row">
            <button type="submit" disabled={state.saving}>Save</button>
            <button type="button" class="link" onClick={() => { setText(null); setState({ error: null, saving: false }); }}>Cancel</button>
          </div>
          {state.error && <p class="error" role="alert">{state.error}</p>}
        </form>
      ) : (
        <Json value={value} />
      )}
    </section>
  );
}

const FINISHED = new Set(["done", "cancelled"]);

/** A bulk re-run of the analysis over the agent's ended calls, followed every 2 s until it is
 * done; its figures are the run's as GET /kalimera/analysis-runs/{id} answers them. */
function Rerun({ agentId }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  const bind = useDraft({ since: localDate("UTC", -29), until: localDate("UTC", 0) });
  useEffect(() => {
    if (!run || FINISHED.has(run.status)) return undefined;
    const timer = setTimeout(
      () => request("GET", `/kalimera/analysis-runs/${run.id}`).then(setRun, setError),
      2000,
    );
    return () => clearTimeout(timer);
  }, [run]);
  const start = async (e) => {
    e.preventDefault();
    setError(null);
    const form = new FormData(e.currentTarget);
    try {
      const made = await request("POST", `/kalimera/ai-agent/${agentId}/analysis-runs`, {
        body: { since: form.get("since"), until: form.get("until") },
      });
      setRun(await request("GET", `/kalimera/analysis-runs/${made.id}`));
    } catch (err) {
      setError(err);
    }
  };
  const cancel = () => request("DELETE", `/kalimera/analysis-runs/${run.id}`).then(setRun, setError);
  const handled = run ? run.done + run.failed + run.skipped + run.cancelled : 0;
  return (
    <>
      <form class="controls" aria-label="Re-run the analysis" onSubmit={start}>
        <label>Ended from (UTC)<input type="date" required {...bind("since")} /></label>
        <label>to<input type="date" required {...bind("until")} /></label>
        <button type="submit" disabled={run && !FINISHED.has(run.status)}>Re-run</button>
      </form>
      <Problem error={error} />
      {run && (
        <div data-run={run.status} role="status">
          <progress max={run.total || 1} value={run.total ? handled : 1} aria-label="Re-run progress" />
          <p>
            <span data-figure="run_status">{run.status}</span>: <span data-figure="run_handled">{handled}</span> of{" "}
            <span data-figure="run_total">{run.total}</span> (done {run.done}, failed {run.failed}, skipped {run.skipped}, cancelled {run.cancelled})
            {!FINISHED.has(run.status) && <> <button type="button" class="link" onClick={cancel}>Cancel</button></>}
          </p>
        </div>
      )}
    </>
  );
}

function Versions({ agentId, version }) {
  const { data } = useData(() => request("GET", `/kalimera/ai-agent/${agentId}/analysis-plan/versions`, { params: { limit: 20 } }), [agentId, version]);
  if (!data?.items?.length) return <p class="note">No version written yet (the default plan applies).</p>;
  return (
    <ol class="versions" data-list="plan-versions">
      {data.items.map((v) => (
        <li key={v.version}>
          <details>
            <summary>Version {v.version}, {when(v.created_at)}</summary>
            <Json value={v} />
          </details>
        </li>
      ))}
    </ol>
  );
}

export function Agent({ id }) {
  const [version, setVersion] = useState(0);
  const [stale, setStale] = useState(null);
  const { data, error } = useData(() => read(id), [id, version]);
  const reload = () => {
    setStale(null);
    setVersion((v) => v + 1);
  };
  const plan = useData(() => request("GET", `/kalimera/ai-agent/${id}/analysis-plan`).catch(() => null), [id, version]);
  return (
    <>
      <p><a href={href("agents")}>← Agents</a></p>
      <Problem error={error} />
      {stale && (
        <div class="conflict" role="alert" data-state="conflict">
          <p>
            <strong>{stale}</strong> was not saved: this agent changed since you opened it (someone else saved first). Reload to see
            the current version, then edit again.
          </p>
          <button type="button" onClick={reload}>Reload</button>
        </div>
      )}
      {data && (
        <>
          <h1>{data.agent.name} <small>{data.agent.profile_type}, updated {when(data.agent.updated_at)}</small></h1>
          {data.agent.description && <p>{data.agent.description}</p>}
          <p><a href={href("conversations", { agent_id: id })}>This agent's conversations</a></p>
          <div class="cards">
            <Card title="Configuration" id="sections" wide>
              {SECTIONS.map((name) => (
                <Section key={`${name}-${data.etag}`} name={name} value={data.agent[name]} etag={data.etag} agentId={id} onSaved={reload} onStale={setStale} />
              ))}
            </Card>
            <Card title="Analysis plan" id="plan" wide>
              {plan.data ? <Json value={plan.data} /> : <p class="note">No analysis plan readable with this token.</p>}
              <h3>Versions</h3>
              <Versions agentId={id} version={version} />
            </Card>
            {can("agents:write") && (
              <Card title="Re-run the analysis" id="rerun" wide>
                <Rerun agentId={id} />
              </Card>
            )}
          </div>
        </>
      )}
    </>
  );
}
