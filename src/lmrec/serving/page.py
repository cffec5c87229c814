"""The page `lmrec-serve` shows at `/`: pick a user, type a history or a text, see the recommendations with titles
and the explanation of the one clicked (the first, at first). `/?user=1` (or `history=1,2,3`, `text=...`) runs that
request on load, so a link shows a result. Plain HTML and the browser's fetch: nothing to build or download."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lmrec</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #222; }
 fieldset { border: 1px solid #ccc; padding: 1em; margin-bottom: 1em; }
 label { display: inline-block; margin-right: 1.5em; }
 input[type=text] { width: 16em; }
 table { border-collapse: collapse; margin-top: 0.5em; }
 td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
 tr.pick { cursor: pointer; }
 tr.pick:hover { background: #f3f6ff; }
 #error { color: #b00020; }
 .cols { display: flex; gap: 2em; align-items: flex-start; }
 .note { color: #666; font-size: 0.9em; }
</style>
</head>
<body>
<h1>lmrec</h1>
<p class="note" id="model"></p>
<fieldset>
 <label>user <input type="text" id="user" placeholder="a user id"></label>
 <label>or history <input type="text" id="history" placeholder="item ids, comma-separated"></label>
 <label>or text <input type="text" id="text" placeholder="what the user likes"></label>
 <label>k <input type="number" id="k" value="10" min="1" max="1000" style="width:4em"></label>
 <button id="go">Recommend</button>
</fieldset>
<p id="error"></p>
<div class="cols">
 <div><h2>Recommendations</h2><table id="results">
  <thead><tr><th>#</th><th>title</th><th>id</th><th>score</th></tr></thead><tbody></tbody></table></div>
 <div><h2>Why <span id="why-title"></span></h2><p class="note" id="why-note"></p>
  <table id="explanation"><thead><tr><th>history item</th><th>contribution</th></tr></thead><tbody></tbody></table>
 </div>
</div>
<script>
const $ = (id) => document.getElementById(id);
let current = null;

function request() {
  const k = parseInt($("k").value || "10", 10);
  if ($("user").value.trim()) return { user: $("user").value.trim(), k };
  if ($("history").value.trim()) {
    return { history: $("history").value.split(",").map((s) => s.trim()).filter((s) => s), k };
  }
  if ($("text").value.trim()) return { text: $("text").value.trim(), k };
  return null;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }

function show(items) {
  const body = $("results").tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    row.className = "pick";
    row.dataset.item = item.item_id;
    cell(row, item.rank); cell(row, item.title); cell(row, item.item_id); cell(row, item.score.toFixed(4));
    row.addEventListener("click", () => explain(item));
    body.appendChild(row);
  }
}

async function explain(item) {
  const body = $("explanation").tBodies[0];
  body.replaceChildren();
  $("why-title").textContent = item.title;
  if (!current || current.text !== undefined) {
    $("why-note").textContent = "a text query has no history items to weigh";
    return;
  }
  try {
    const why = await post("/explain", { item: item.item_id, user: current.user, history: current.history });
    const reason = why.reason ? ": " + why.reason : "";
    $("why-note").textContent = why.method + reason + (why.note ? " (" + why.note + ")" : "");
    for (const part of why.contributions.slice(0, 15)) {
      const row = document.createElement("tr");
      cell(row, part.title); cell(row, part.contribution.toFixed(4));
      body.appendChild(row);
    }
  } catch (err) { $("why-note").textContent = err.message; }
}

async function run() {
  $("error").textContent = "";
  current = request();
  if (!current) { $("error").textContent = "give a user, a history or a text"; return; }
  try {
    const data = await post("/recommend", current);
    show(data.items);
    if (data.items.length) await explain(data.items[0]);
    document.body.dataset.state = "done";
  } catch (err) { $("error").textContent = err.message; document.body.dataset.state = "error"; }
}

$("go").addEventListener("click", run);
fetch("/health").then((r) => r.json()).then((h) => {
  $("model").textContent = `${h.model} (${h.task}) on ${h.users} users and ${h.items} items`;
});
const query = new URLSearchParams(window.location.search);
for (const name of ["user", "history", "text", "k"]) if (query.get(name)) $(name).value = query.get(name);
if (query.get("user") || query.get("history") || query.get("text")) run();
</script>
</body>
</html>
"""
