// The status page made live, without a framework or a build step (served from /static/page.js).
//
// - The namespace filter applies at once (no reload) and is kept in the URL (?namespace=).
// - While "live" is ticked, the page refreshes every few seconds from the JSON endpoints:
//   /api/objects, /api/graph?pictures=1 (only when a new build was published or the filter
//   changed) and /api/envoys.
// Everything from the server is inserted as text (textContent, dataset); the pictures are the
// SVG the server rendered and escaped, parsed as XML (scripts never run from a parsed document).
"use strict";

(() => {
  const REFRESH_MS = 4000;
  const MAX_ROWS = 2000; // as the server renders (page.MAX_ROWS)
  const $ = (selector) => document.querySelector(selector);
  const select = $("#namespace");
  const live = $("#live");
  let sequence = document.body.dataset.sequence;
  let drawnFor = select.value;

  $("#apply").hidden = true; // the button serves pages without JavaScript

  const query = (path, extra = {}) => {
    const url = new URL(path, location.href);
    if (select.value) url.searchParams.set("namespace", select.value);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    return url;
  };

  const fetchJson = async (url) => {
    const answer = await fetch(url, { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(`${url.pathname}: ${answer.status}`);
    return answer.json();
  };

  const cell = (row, text, className) => {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };

  const badge = (text, className) => {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  };

  const applyFilter = () => {
    const namespace = select.value;
    for (const row of document.querySelectorAll("#objects-table tbody tr")) {
      row.hidden = namespace !== "" && row.dataset.namespace !== namespace;
    }
    for (const figure of document.querySelectorAll("#pictures figure")) {
      const names = (figure.dataset.namespaces || "").split(" ");
      figure.hidden = namespace !== "" && !names.includes(namespace);
    }
    const url = new URL(location.href);
    if (namespace) url.searchParams.set("namespace", namespace);
    else url.searchParams.delete("namespace");
    history.replaceState(null, "", url);
  };

  const renderNamespaces = (namespaces) => {
    const current = select.value;
    const options = [new Option("all namespaces", "")];
    for (const name of new Set([...namespaces, current].filter(Boolean))) {
      options.push(new Option(name, name, false, name === current));
    }
    select.replaceChildren(...options);
    select.value = current;
  };

  const renderSummary = (data) => {
    const s = data.summary;
    const summary = $("#summary");
    summary.replaceChildren(
      `build ${data.sequence} \u00b7 IngressRoutes: `,
      badge(`${s.valid} valid`, "status valid"), " ",
      badge(`${s.invalid} invalid`, "status invalid"), " ",
      badge(`${s.orphaned} orphaned`, "status orphaned"),
      ` \u00b7 Ingresses: ${s.ingresses} (`,
      badge(`${s.warnings} with warnings`, "status warning"), ")",
    );
  };

  const renderObjects = (data) => {
    const rows = data.objects.map((object) => {
      const row = document.createElement("tr");
      row.dataset.namespace = object.namespace;
      row.dataset.kind = object.kind;
      row.dataset.status = object.status;
      cell(row, object.kind);
      cell(row, object.namespace);
      cell(row, object.name);
      cell(row, object.host);
      row.insertCell().append(badge(object.status, `status ${object.status}`));
      cell(row, object.description, "description");
      return row;
    });
    $("#objects-table tbody").replaceChildren(...rows);
    $("#objects-empty").hidden = rows.length > 0;
    renderNamespaces(data.namespaces);
    renderSummary(data);
  };

  const renderPictures = (data) => {
    const figures = data.pictures.map((drawn) => {
      const figure = document.createElement("figure");
      figure.className = "graph";
      figure.dataset.namespaces = drawn.namespaces.join(" ");
      const caption = document.createElement("figcaption");
      const notes = [];
      if (drawn.cycles) notes.push(`${drawn.cycles} cycle${drawn.cycles > 1 ? "s" : ""}`);
      if (drawn.left_out) notes.push(`${drawn.left_out} more not drawn`);
      caption.textContent = drawn.title + (notes.length ? ` (${notes.join(", ")})` : "");
      figure.append(caption);
      const svg = new DOMParser().parseFromString(drawn.svg, "image/svg+xml").documentElement;
      if (svg.namespaceURI === "http://www.w3.org/2000/svg") {
        figure.append(document.importNode(svg, true));
      }
      return figure;
    });
    $("#pictures").replaceChildren(...figures);
  };

  const renderEnvoys = (data) => {
    const rows = data.envoys.map((envoy) => {
      const row = document.createElement("tr");
      row.dataset.node = envoy.node_id;
      cell(row, envoy.node_id || "(no node id yet)");
      cell(row, envoy.cluster);
      cell(row, String(envoy.streams));
      const versions = cell(row, envoy.types.length ? "" : "\u2014", "versions");
      for (const type of envoy.types) {
        const version = badge(`${type.type} ${type.acked.slice(0, 12)}`,
          `version ${type.current ? "current" : "behind"}`);
        version.title = type.current ? "what is served now" : "not what is served now";
        versions.append(version, " ");
      }
      const nack = cell(row, "", "description");
      if (envoy.last_nack) {
        const ago = Math.max(0, Math.round(Date.now() / 1000 - envoy.last_nack.time));
        nack.append(badge(envoy.last_nack.type, "status invalid"),
          ` ${ago}s ago: ${envoy.last_nack.message}`);
      } else {
        nack.textContent = "\u2014";
      }
      return row;
    });
    $("#envoys-table tbody").replaceChildren(...rows);
    $("#envoys-empty").hidden = rows.length > 0;
  };

  const refresh = async () => {
    try {
      const objects = await fetchJson(query("/api/objects", { limit: String(MAX_ROWS) }));
      const changed = String(objects.sequence) !== sequence || drawnFor !== select.value;
      renderObjects(objects);
      if (changed) {
        renderPictures(await fetchJson(query("/api/graph", { pictures: "1" })));
        sequence = String(objects.sequence);
        drawnFor = select.value;
      }
      renderEnvoys(await fetchJson(new URL("/api/envoys", location.href)));
      applyFilter();
      $("#stale").hidden = true;
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (error) {
      $("#stale").hidden = false;
      $("#stale").textContent = `not updating: ${error.message}`;
    }
  };

  select.addEventListener("change", () => {
    applyFilter();
    refresh();
  });
  setInterval(() => {
    if (live.checked && !document.hidden) refresh();
  }, REFRESH_MS);
  applyFilter();
  document.body.dataset.ready = "1";
})();
