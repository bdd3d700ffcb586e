// The view lives in the URL's hash (#/page/id?key=value): a view can be shared or reloaded, and
// the server needs no fallback route. Controls write their values here, pages read them back.
import { useEffect, useState } from "preact/hooks";

export function parse(hash = location.hash) {
  const text = hash.replace(/^#/, "");
  const [path, search = ""] = text.split("?");
  const parts = path.split("/").filter(Boolean);
  return { page: parts[0] || "overview", id: parts[1] || null, params: Object.fromEntries(new URLSearchParams(search)) };
}

export function href(page, params = {}, id = null) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return `#/${page}${id ? `/${id}` : ""}${s ? `?${s}` : ""}`;
}

export function useRoute() {
  const [route, setRoute] = useState(parse());
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

/** Replace some of the current page's parameters (an empty value removes one). */
export function setParams(changes) {
  const { page, id, params } = parse();
  location.hash = href(page, { ...params, ...changes }, id);
}
