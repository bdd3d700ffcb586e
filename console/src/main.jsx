// The console's shell: sign-in, the navigation the token's scopes allow, and the pages.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { BEHIND_GATEWAY, can, onSession, restore, session, signIn, signOut } from "./api.js";
import { Agent } from "./pages/agent.jsx";
import { Call, Conversations } from "./pages/conversations.jsx";
import { Overview } from "./pages/overview.jsx";
import { Contact, Contacts } from "./pages/contacts.jsx";
import { Agents } from "./pages/more.jsx";
import { Webhook, Webhooks } from "./pages/webhooks.jsx";
import { href, useRoute } from "./route.js";
import "./style.css";

const PAGES = [
  { page: "overview", title: "Overview", scope: "statistics:read", view: Overview },
  { page: "conversations", title: "Conversations", scope: "conversations:read", view: Conversations },
  { page: "agents", title: "Agents", scope: "agents:read", view: Agents },
  { page: "contacts", title: "Contacts", scope: "contacts:read", view: Contacts },
  { page: "webhooks", title: "Webhooks", scope: "webhooks:read", view: Webhooks },
];

function SignIn({ message }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const form = new FormData(e.currentTarget);
      await signIn(form.get("token"), form.get("subscription"));
    } catch (err) {
      setError(err.message);
    }
    setBusy(false);
  };
  return (
    <main class="signin">
      <h1>Kalimera console</h1>
      {message && <p class="error" role="alert" data-message="signed-out">{message}</p>}
      <form onSubmit={submit} aria-label="Sign in">
        <label>
          API token
          <input type="password" name="token" required autocomplete="off" spellcheck={false} autofocus />
        </label>
        {BEHIND_GATEWAY && (
          <label>
            Subscription key (API Management)
            <input type="password" name="subscription" required autocomplete="off" spellcheck={false} />
          </label>
        )}
        <button type="submit" disabled={busy}>Sign in</button>
        {error && <p class="error" role="alert">{error}</p>}
        <p class="note">
          The token is kept in this tab only (sessionStorage) and sent to this server alone. <code>make run</code> prints one.
        </p>
      </form>
    </main>
  );
}

function Shell() {
  const route = useRoute();
  const visible = PAGES.filter((p) => !p.scope || can(p.scope));
  const current = visible.find((p) => p.page === route.page) || visible[0];
  const detail = { conversations: Call, agents: Agent, contacts: Contact, webhooks: Webhook }[current?.page];
  const View = route.id && detail ? detail : current?.view;
  return (
    <>
      <header class="top">
        <a class="brand" href={href("overview")}>Kalimera</a>
        <nav aria-label="Console pages">
          {visible.map((p) => (
            <a key={p.page} href={href(p.page)} aria-current={p.page === current?.page ? "page" : undefined}>{p.title}</a>
          ))}
        </nav>
        <button type="button" class="link" onClick={() => signOut("Signed out.")}>Sign out</button>
      </header>
      <main>
        {View ? <View params={route.params} id={route.id} /> : <p class="note">This token's scopes allow none of the console's pages.</p>}
      </main>
    </>
  );
}

function App() {
  const [state, setState] = useState({ ...session });
  useEffect(() => {
    const off = onSession(setState);
    restore();
    return off;
  }, []);
  if (!state.token) return <SignIn message={state.message} />;
  if (!state.scopes) return <p class="note">Checking the token…</p>;
  return <Shell />;
}

render(<App />, document.getElementById("app"));
