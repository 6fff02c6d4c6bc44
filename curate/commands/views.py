"""Rich tables for the CLI (the library returns data; only the CLI prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from curate.ingest import IngestReport


def ingest_table(report: IngestReport) -> Table:
    table = Table(title="ingested", title_justify="left")
    for column in ("file", "layout", "rows", "bad", "dup", "new pairs", "present", "new judgments"):
        table.add_column(column, justify="left" if column in ("file", "layout", "new judgments") else "right")
    for f in report.files:
        judgments = ", ".join(f"{n} {source}" for source, n in sorted(f.judgments.items())) or "0"
        table.add_row(Path(f.path).name, f.layout, str(f.rows), str(f.bad_rows), str(f.duplicate_rows),
                      str(f.pairs), str(f.pairs_present), judgments)
    return table


def status_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"project {summary['project']} ({summary['database']})", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("records", "completions", "pairs", "judgments"):
        table.add_row(key, str(summary[key]))
    for source, n in summary["judgments_by_source"].items():
        table.add_row(f"  judgments: {source}", str(n))
    for kind, n in summary["annotators"].items():
        table.add_row(f"annotators: {kind}", str(n))
    for key in ("rounds", "items", "models", "cluster_runs", "near_duplicates", "ingested_files"):
        table.add_row(key.replace("_", " "), str(summary[key]))
    for name, n in summary["slices"].items():
        table.add_row(f"slice: {name}", f"{n} (never selected or trained on)")
    latest = summary["latest_round"]
    if latest:
        routes = ", ".join(f"{n} {k}" for k, n in latest["routes"].items())
        arms = ", ".join(f"{n} {k}" for k, n in latest["arms"].items())
        table.add_row(f"round {latest['number']} ({latest['strategy']}, {latest['status']})",
                      f"{latest['items']} items: {routes}; arms: {arms}")
    work = summary["annotation"]
    for r in work["open_rounds"]:
        table.add_row(f"annotation: round {r['round']}", f"{r['complete']} / {r['items']} items complete "
                                                         f"({r['judgments']} / {r['needed']} judgments, "
                                                         f"{work['overlap']} per item)")
    for name, n in work["judgments_by_annotator"].items():
        table.add_row(f"  judged by {name}", str(n))
    if work["flags"]:
        table.add_row("flagged items", f"{work['flags']} (the Review tab of curate serve)")
    for kind, run in summary["scores"].items():
        state = f"stale: {run['why']}" if run["stale"] else "current"
        table.add_row(f"scores: {kind}", f"{run['units']} by {run['model']} ({state})")
    for m in summary["trained_models"]:
        data = ", ".join(f"{split} {d['rows']} sha256 {str(d['sha256'])[:12]}" for split, d in m["data"].items())
        test = m["test"] or {}
        figure = f"; test accuracy {test['preference_accuracy']:.3f}" if "preference_accuracy" in test else ""
        where = f"round {m['round']}" if m["round"] is not None else "all rounds"
        table.add_row(f"model {m['name']} ({m['kind']}, {where})",
                      f"{data}{figure}" + (f"; parent {m['parent']}" if m["parent"] else "") + f"\n{m['adapter']}")
    for g in summary["generations"]:
        picked = ", ".join(f"round {r}: {n} item{'s' * (n != 1)}" for r, n in g["selected_in_rounds"].items()
                           ) or "not selected yet"
        table.add_row(f"generation {g['run']} by {g['model']}" + ("" if g["status"] == "done" else f" ({g['status']})"),
                      f"{g['completions']} completions, {g['pairs']} pairs; {picked}")
    return table


def clusters_table(run: Any, clusters: list[Any]) -> Table:
    table = Table(title=f"clusters of run {run.id} ({run.field}s, {run.method}, k={run.k})", title_justify="left",
                  show_lines=True)
    for column in ("cluster", "size", "keywords", "closest to the centre"):
        table.add_column(column, justify="right" if column in ("cluster", "size") else "left")
    for c in clusters:
        name = "noise" if c.cluster == -1 else str(c.cluster)
        table.add_row(name, str(c.size), ", ".join(c.keywords), "\n".join(f"• {e}" for e in c.examples))
    return table


def duplicates_table(result: Any, most: int) -> Table:
    table = Table(title=f"largest near-duplicate groups (of {len(result.groups)})", title_justify="left",
                  show_lines=True)
    for column in ("members", "min similarity", "kept (first) and duplicates"):
        table.add_column(column, justify="left" if column.startswith("kept") else "right")
    for group in result.groups[:most]:
        table.add_row(str(len(group.members) + 1), f"{min(s for _, s in group.members):.3f}",
                      "\n".join(f"• {e}" for e in group.examples))
    return table


def drift_table(report: Any, most: int = 15) -> Table:
    table = Table(title=f"cluster shares (clusters of run {report.cluster_run}; new rows go to the nearest centre)",
                  title_justify="left")
    for column in ("cluster", "pool", "new", "change"):
        table.add_column(column, justify="right")
    for shift in report.clusters[:most]:
        change = shift.new_share - shift.pool_share
        table.add_row("noise" if shift.cluster == -1 else str(shift.cluster), f"{shift.pool_share:.1%}",
                      f"{shift.new_share:.1%}", f"{change:+.1%}")
    return table


def agreement_table(report: dict[str, Any]) -> Table:
    def fmt(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{value:.3f}"

    def ci(entry: dict[str, Any]) -> str:
        return f"{fmt(entry['value'])}" + (f" [{fmt(entry['ci95'][0])}, {fmt(entry['ci95'][1])}]"
                                           if entry.get("ci95") else "")

    where = f"round {report['round']}" if report["round"] is not None else "all pair judgments"
    who = "the project's people" if report["raters"] == "app" else "the imported crowd"
    table = Table(title=f"agreement of {who} on {where}: {report['items_multi']} items judged by 2+ of "
                        f"{report['annotators']} annotators", title_justify="left")
    table.add_column("measure")
    table.add_column("value (95% interval)", justify="right")
    if report.get("note"):
        table.caption = report["note"]
    fleiss = report["fleiss_kappa"]
    table.add_row("percent agreement", ci(report["percent_agreement"]))
    table.add_row(f"Fleiss' kappa ({fleiss['raters_per_item']} raters per item)", ci(fleiss))
    table.add_row("Krippendorff's alpha (nominal: a/b/tie/both bad)", ci(report["krippendorff_alpha"]))
    table.add_row("Krippendorff's alpha (ordinal: confidence)", fmt(report["krippendorff_alpha"]["confidence_ordinal"]))
    cohen = report["cohen_kappa"]
    table.add_row(f"Cohen's kappa, mean of {cohen['pairs']} annotator pairs (>= {cohen['min_common_items']} "
                  "shared items)", fmt(cohen["mean"]))
    methods = report.get("methods_vs_gold")
    if methods:
        majority, ds = methods["majority"], methods["dawid_skene"]
        table.add_row(f"majority vote vs gold ({majority['items']} pairs; {majority['ties_left_undecided']} ties "
                      "left to adjudicate)", fmt(majority["accuracy"]))
        table.add_row(f"Dawid-Skene vs gold (all {ds['items']} gold pairs)", fmt(ds["accuracy"]))
        table.add_row("  on the pairs the majority decides / on the ties",
                      f"{fmt(ds['on_majority_items'])} / {fmt(ds['on_ties'])}")
    for versus in report["vs_imported"]:
        table.add_row(f"{who}'s label vs imported {versus['imported']} ({versus['decided']} of {versus['items']} "
                      "pairs decided): agreement / Cohen's kappa",
                      f"{fmt(versus['agreement'])} / {fmt(versus['cohen_kappa'])}")
        for a in sorted(versus["annotators"], key=lambda a: -a["items"])[:10]:
            table.add_row(f"  {a['annotator']} vs imported {versus['imported']} ({a['items']})", fmt(a["accuracy"]))
    for c in report["by_cluster"]:
        table.add_row(f"  cluster {c['cluster']} ({c['items']} items): percent agreement",
                      fmt(c["percent_agreement"]))
    people = sorted(report["annotators_detail"], key=lambda a: -a["labels"])[:10]
    for a in people:
        table.add_row(f"  {a['annotator']}: {a['labels']} labels", f"with majority {fmt(a['agrees_with_majority'])}, "
                      f"gold {fmt(a['gold_accuracy'])} ({a['gold_items']})")
    return table
