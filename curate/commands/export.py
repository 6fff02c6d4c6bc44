"""``curate export``: TRL-ready datasets from the project's final labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import JsonFlag, ProjectDir, out, print_json
from curate.errors import CurateError


def export(fmt: Annotated[str, typer.Option("--format", "-f", help="dpo | reward | sft | kto")],
           out_path: Annotated[Path | None, typer.Option("--out", "-o", help="A .jsonl or .parquet file, or a name "
                                                         "without an extension for a `datasets` DatasetDict folder; "
                                                         "test/calibration splits go beside it. Any other extension "
                                                         "is refused.")] = None,
           push_to_hub: Annotated[str | None, typer.Option("--push-to-hub", metavar="ORG/NAME",
                                                           help="Also (or, without --out, only) push the export to "
                                                           "this Hugging Face Hub dataset repo, created if missing: "
                                                           "a parquet file per split and a dataset card. Token from "
                                                           "HF_TOKEN or `hf auth login`.")] = None,
           private: Annotated[bool, typer.Option("--private", help="Create the Hub repo private (with "
                                                 "--push-to-hub); an existing public repo is refused.")] = False,
           round_number: Annotated[int | None, typer.Option("--round", help="Only the judgments of this round's "
                                                            "items (a round nobody judged is refused).")] = None,
           everything: Annotated[bool, typer.Option("--all", help="Every labelled pair, rewrite and ranking "
                                                    "(the default).")] = False,
           min_agreement: Annotated[float | None, typer.Option("--min-agreement", help="Leave out pair labels whose "
                                                               "agreement (the share of the deciding people who "
                                                               "chose the label) is below this (0-1).")] = None,
           with_imported: Annotated[bool, typer.Option("--with-imported", help="Also export pairs labelled only by "
                                                       "the imported data (gold, crowd or data-set labels); not "
                                                       "with --round. The test and calibration slices always "
                                                       "keep their imported answers.")] = False,
           lineage: Annotated[bool, typer.Option("--lineage", help="Add lineage columns (record, pair, round, item, "
                                                 "label source, annotators, how decided, instruction "
                                                 "versions).")] = False,
           weights: Annotated[bool, typer.Option("--weights", help="Add a weight column: the label's "
                                                 "agreement.")] = False,
           project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Export final labels as a TRL dataset: dpo/reward (prompt, chosen, rejected), sft (prompt, completion),
    kto (prompt, completion, label); the frozen test and calibration slices as separate splits.

    Written to --out, pushed to a Hugging Face Hub dataset repo with --push-to-hub, or both."""
    from curate.export import export as run_export
    from curate.project import open_project

    if everything and round_number is not None:
        raise CurateError("--all and --round exclude each other")
    with open_project(project_dir) as project:
        result = run_export(project, fmt=fmt, out=out_path, push_to_hub=push_to_hub, private=private,
                            round_number=round_number, min_agreement=min_agreement, with_imported=with_imported,
                            lineage=lineage, weights=weights)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    if result["splits"]:
        table = Table("split", "rows", "file", "sha256", title=f"{fmt} export", title_justify="left")
        for split, info in result["splits"].items():
            table.add_row(split, str(info["rows"]), info["path"], info["sha256"][:12])
        out.print(table)
    if "hub" in result:
        counts = ", ".join(f"{split} {n}" for split, n in result["hub"]["rows"].items())
        out.print(f"pushed to {result['hub']['url']} ({counts})", markup=False)
    for reason, pairs in result["left_out"].items():
        out.print(f"left out: {pairs} pairs {reason}")
