// The agent list with its search (the search form serves the contact list too).
import { get } from "../api.js";
import { href, setParams } from "../route.js";
import { Problem } from "../ui.jsx";
import { useDraft } from "./conversations.jsx";
import { count, useData } from "../util.js";

export function Search({ value, label }) {
  const bind = useDraft({ search: value });
  return (
    <form class="controls" role="search" aria-label={label} onSubmit={(e) => { e.preventDefault(); setParams({ search: new FormData(e.currentTarget).get("search"), page: "" }); }}>
      <label class="grow">
        Search
        <input type="search" {...bind("search")} />
      </label>
      <button type="submit">Search</button>
    </form>
  );
}

export function Agents({ params }) {
  const q = { search: params.search, page: params.page || 1, limit: 20 };
  const { data, error } = useData(() => get("/kalimera/ai-agent", q), [JSON.stringify(q)]);
  return (
    <>
      <h1>Agents</h1>
      <Search value={params.search} label="Search agents" />
      <Problem error={error} />
      {data && (
        <div class="scroll">
          <p class="lead">{count(data.total, "agent")}</p>
          <table class="grid" data-table="agents">
            <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Description</th></tr></thead>
            <tbody>
              {data.items.map((a) => (
                <tr key={a.id} data-id={a.id}>
                  <td><a href={href("agents", {}, a.id)}>{a.name}</a></td>
                  <td>{a.type}</td>
                  <td>{a.description || ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
