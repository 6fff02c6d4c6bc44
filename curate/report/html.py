"""The report's page: matplotlib pictures embedded as PNG data (one file, opens offline) and small tables."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.project import Project

MAX_MAP_POINTS = 20_000
ARM_COLOURS = {"strategy": "#1f77b4", "random": "#ff7f0e", "test": "#7f7f7f", "calibration": "#bcbd22",
               "gold": "#9467bd", "both": "#2ca02c"}
ROUND_MARKERS = "o^sDvP*X"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.muted{color:#666;font-size:.9em} figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em} th,td{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top} th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8em} .card{border:1px solid #ddd;border-radius:6px;padding:.5em .9em}
.card b{font-size:1.3em;display:block}
"""


def render_report(project: Project, data: dict[str, Any]) -> str:
    """The HTML page for ``data`` (from ``report_data``)."""
    rounds = data["rounds"]
    parts = [f"<h1>curate report: {escape(data['project'])}</h1>",
             f"<p class=muted>generated {escape(data['generated_at'])} from {escape(str(project.root))}</p>",
             _cards(data)]
    parts += ["<h2>Where each round chose</h2>", _figure(_map_png(project, rounds),
              "The pool on a 2-D map of its embeddings (grey); the pairs each round's training arms "
              "chose are marked, by round (marker) and arm (colour: strategy blue, random orange).")]
    parts += ["<h2>What each round selected, and why</h2>", _figure(_rounds_png(rounds),
              "Items per round by arm (left) and by route (right). The random arm is the baseline the strategy is "
              "measured against; test and calibration items label the frozen slices."), _rounds_table(rounds)]
    parts += [_examples(r) for r in rounds]
    if data["metadata"]:
        parts += ["<h2>The pool by metadata, and what each round chose</h2>",
                  _metadata_tables(data["metadata"], rounds)]
    parts += ["<h2>Learning curve against the random arm</h2>", _curve_section(data["learning_curve"])]
    parts += ["<h2>Agreement</h2>", _agreement_table(data["agreement"])]
    parts += ["<h2>Labels: what decided each pair</h2>", _labels_section(data["labels"])]
    parts += ["<h2>Model versions</h2>", _models_table(data["models"]), _generations_table(data["generations"])]
    parts += ["<h2>What changed between rounds</h2>", _changes_section(data["changes"], rounds)]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>curate report: {escape(data['project'])}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def _cards(data: dict[str, Any]) -> str:
    counts = data["counts"]
    facts = [("records", counts["records"]), ("pairs", counts["pairs"]), ("completions", counts["completions"]),
             ("judgments", counts["judgments"]), ("rounds", counts["rounds"]),
             ("test slice", data["slices"].get("test", 0)), ("calibration slice", data["slices"].get("calibration", 0)),
             ("trained models", len(data["models"]))]
    return "<div class=cards>" + "".join(f"<div class=card><b>{v:,}</b>{escape(k)}</div>" for k, v in facts) + "</div>"


def _figure(png: bytes | None, caption: str) -> str:
    if png is None:
        return f"<p class=muted>{escape(caption)} (nothing to draw yet)</p>"
    return (f"<figure><img alt=\"{escape(caption)}\" src=\"data:image/png;base64,{base64.b64encode(png).decode()}\">"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _plt().close(fig)
    return buffer.getvalue()


def _map_png(project: Project, rounds: list[dict[str, Any]]) -> bytes | None:
    chosen = {uid for r in rounds for ids in r["pairs_by_arm"].values() for uid in ids}
    found = _coordinates(project, chosen)
    if found is None:
        return None
    ids, coords, title = found
    where = {uid: k for k, uid in enumerate(ids)}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 6.5))
    ax.scatter(coords[:, 0], coords[:, 1], s=9, color="#b8b8b8", linewidths=0, label="pool")
    for n, r in enumerate(rounds):
        for arm in ("strategy", "random"):
            picked = [uid for uid in r["pairs_by_arm"].get(arm, []) if uid in where]
            if picked:
                xy = coords[[where[uid] for uid in picked]]
                ax.scatter(xy[:, 0], xy[:, 1], s=42, marker=ROUND_MARKERS[n % len(ROUND_MARKERS)],
                           facecolors=ARM_COLOURS[arm] if arm == "strategy" else "none",
                           edgecolors=ARM_COLOURS[arm], linewidths=1.2, alpha=0.85,
                           label=f"round {r['number']} · {arm} ({len(picked)})")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    return _png(fig)


def _coordinates(project: Project, chosen: set[str]) -> tuple[list[str], np.ndarray, str] | None:
    """Unit ids, 2-D coordinates and a title: those of ``curate map`` (maps/pair.csv) when they cover every chosen
    pair, else a projection of the pool's embeddings (every chosen unit, and a sample of the rest if large)."""
    import csv

    from curate.pool.maps import project_2d
    from curate.pool.units import load_pool

    written = project.root / "maps" / "pair.csv"
    try:
        with open(written, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        ids = [r["unit_id"] for r in rows]
        coords = np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=np.float32).reshape(-1, 2)
    except (OSError, KeyError, ValueError, TypeError):  # no map yet, or not one curate map wrote
        ids = []
    if ids and chosen <= set(ids):
        return ids, coords, "pairs, as curate map drew them (maps/pair.csv)"
    try:
        units, vectors, _ = load_pool(project)  # pairs (as the clustering sees them), else prompts
    except CurateError:
        return None
    index = np.arange(len(units))
    if len(units) > MAX_MAP_POINTS:  # every chosen unit, then a sample of the rest
        keep = np.array([uid in chosen for uid in units.ids])
        rest = np.random.default_rng(0).choice(np.flatnonzero(~keep), MAX_MAP_POINTS, replace=False)
        index = np.sort(np.concatenate([np.flatnonzero(keep), rest]))
    coords, method = project_2d(vectors[index], method="auto", random_state=0)
    return [units.ids[i] for i in index.tolist()], coords, f"{units.field}s ({method.upper()} of their embeddings)"


def _rounds_png(rounds: list[dict[str, Any]]) -> bytes:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = [f"round {r['number']}\n{r['strategy']}" for r in rounds]
    x = np.arange(len(rounds))
    for ax, key, order in ((left, "arms", ("strategy", "random", "test", "calibration", "gold")),
                           (right, "routes", ("rank", "rewrite", "ranking"))):
        bottom = np.zeros(len(rounds))
        for name in order:
            values = np.array([r[key].get(name, 0) for r in rounds], dtype=float)
            if values.any():
                ax.bar(x, values, bottom=bottom, label=name, color=ARM_COLOURS.get(name), width=0.6)
                bottom += values
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("items")
        ax.legend(fontsize=8, frameon=False)
    left.set_title("by arm", fontsize=10)
    right.set_title("by route", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"<td class=num>{value:.3f}</td>"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"<td class=num>{value:,}</td>"
        return f"<td>{escape('' if value is None else str(value))}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _rounds_table(rounds: list[dict[str, Any]]) -> str:
    return _table(["round", "strategy", "cold start", "seed", "status", "pool pairs", "items", "by arm", "by route",
                   "generated pairs chosen", "judgments", "skipped"],
                  [[r["number"], r["strategy"], "yes" if r["cold_start"] else "no", r["seed"], r["status"],
                    r["pool_pairs"], r["items"], _counts(r["arms"]), _counts(r["routes"]), r["generated_items"],
                    r["judgments"], r["skipped"]] for r in rounds])


def _metadata_tables(groups: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> str:
    """Per kept metadata key: pairs in the pool per value, and the pairs each round's strategy and random arms
    chose."""
    header = ["value", "pool pairs", *[f"round {r['number']}" for r in rounds]]
    return "".join(f"<h3>{escape(g['key'])}</h3>" + _table(header, [[v["value"], v["pool"], *v["chosen"]]
                                                                     for v in g["values"]]) for g in groups)


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


def _examples(r: dict[str, Any]) -> str:
    if not r["examples"]:
        return ""
    rows = [[e["route"], e["why"], e["prompt"]] for e in r["examples"]]
    return (f"<h3>Round {r['number']}: the strategy's first items</h3>"
            + _table(["route", "why", "prompt (start)"], rows))


def _curve_section(curve: dict[str, Any]) -> str:
    if curve["note"]:
        return f"<p class=muted>{escape(curve['note'])}</p>"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in ("strategy", "random", "both"):
        points = [(p["labels"], p["accuracy"]) for p in curve[arm] if p["accuracy"] is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", color=ARM_COLOURS[arm], label=f"{arm} arm" if arm != "both" else "both arms")
    ax.set_xlabel("labelled pairs the learner was fitted on")
    ax.set_ylabel(f"accuracy on the test slice ({curve['test_pairs']} pairs)")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    rows = [[n] + [_point(curve[arm][k]) for arm in ("strategy", "random", "both")]
            for k, n in enumerate(curve["rounds"])]
    return (_figure(_png(fig), "The project's learner fitted on each arm's labels so far, after each round, scored "
                               "on the frozen test slice. With a few dozen labels the gap is noise; curate simulate "
                               "measures the label-efficiency ratio over many splits and seeds.")
            + _table(["after round", "strategy arm", "random arm", "both arms"], rows))


def _point(point: dict[str, Any]) -> str:
    accuracy = "too few labels to fit" if point["accuracy"] is None else f"{point['accuracy']:.3f}"
    return f"{accuracy} ({point['labels']} labels)"


def _agreement_table(agreement: list[dict[str, Any]]) -> str:
    return _table(["round", "items judged by 2+", "annotators", "percent agreement", "Fleiss κ", "Krippendorff α",
                   "note"],
                  [[a["round"], a.get("items"), a.get("annotators"), a.get("percent_agreement"),
                    a.get("fleiss_kappa"), a.get("krippendorff_alpha"), a["note"]] for a in agreement])


def _labels_section(labels: dict[str, Any]) -> str:
    precedence = ("<p>A pair's final label comes from the first of these that has spoken on it: a lead's "
                  "adjudication, the people's judgments in the project (a tie waits for a lead, whatever the "
                  "imported file says), imported gold, an imported crowd's votes, the data set's own label. "
                  "Agreement, the weight an export writes, is the share of the deciding voters who chose the label "
                  "(votes for it / votes cast); a lead's decision, gold and a data set's label count as 1. "
                  "An export's train split holds imported labels only with --with-imported; the frozen slices keep "
                  "them as answers, and the learner and the learning curve use them. "
                  f"{labels['queue']} pairs wait in the adjudication queue.</p>")
    return precedence + _table(["source", "how", "pairs", "mean agreement"],
                               [[r["source"], r["how"], r["pairs"], r["mean_agreement"]] for r in labels["by_source"]])


def _models_table(models: list[dict[str, Any]]) -> str:
    if not models:
        return "<p class=muted>No model trained yet (curate train).</p>"
    rows = []
    for m in models:
        test = m.get("test") or {}
        figures = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(test.items()))
        rows.append([m["name"], m["kind"], m["round"], m["base"], (m["data"].get("train") or {}).get("rows"),
                     figures or "not evaluated"])
    return _table(["version", "kind", "round", "base", "train rows", "test slice"], rows)


def _generations_table(generations: list[dict[str, Any]]) -> str:
    if not generations:
        return "<p class=muted>No completions generated yet (curate generate).</p>"
    return _table(["run", "model", "status", "completions", "pairs", "chosen in rounds"],
                  [[g["run"], g["model"], g["status"], g["completions"], g["pairs"],
                    _counts({f"round {k}": v for k, v in g["selected_in_rounds"].items()}) or "none yet"]
                   for g in generations])


def _changes_section(changes: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> str:
    if not changes:
        return "<p class=muted>One round so far.</p>"
    table = _table(["from", "to", "strategies", "pool pairs", "generated pairs chosen", "cluster shift (0-1)"],
                   [[c["from"], c["to"], " → ".join(c["strategy"]), " → ".join(str(p) for p in c["pool_pairs"]),
                     c["generated_items"], c["cluster_shift"]] for c in changes])
    caption = "Share of each cluster (of the latest clustering) among the training arms' items, per round."
    return _figure(_clusters_png(rounds), caption) + table


def _clusters_png(rounds: list[dict[str, Any]]) -> bytes | None:
    keys = sorted({k for r in rounds for k in r["clusters"]}, key=lambda k: int(k) if k.lstrip("-").isdigit() else 0)
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(min(max(6.0, len(keys) * 0.3), 14.0), 3.5))
    width = 0.8 / len(rounds)
    for n, r in enumerate(rounds):
        total = sum(r["clusters"].values()) or 1
        ax.bar(np.arange(len(keys)) + n * width, [r["clusters"].get(k, 0) / total for k in keys], width=width,
               label=f"round {r['number']}")
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, [f"c{k}" for k in keys], fontsize=7,
                  rotation=90 if len(keys) > 25 else 0)
    ax.set_ylabel("share of items")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _png(fig)
