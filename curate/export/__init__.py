"""``curate export``: the project's final labels as TRL-ready datasets (dpo, reward, sft, kto).

Which labels: the final label of each pair (``curate.labels``: a lead's adjudication, else the people's
judgments in the project, else imported gold, crowd or data-set labels). Train holds only labels given in the
project (``app`` and ``adjudication``) unless ``with_imported`` adds pairs whose label came with the data;
the test and calibration splits hold the frozen slices with their best answers, imported ones included;
lineage's ``source`` column says which is which. ``round_number`` exports the people's judgments of that
round's items (and adjudications of its pairs) only: an unjudged item gives nothing, a round nobody has
judged is refused, and ``with_imported`` is refused with it.

Rules, for every format at once (what each format makes of them is its class in ``curate.export.formats``):

- a **pair** whose final label is A or B -> a preference, chosen = the winner; a tie -> nothing (no preference
  and nothing said about quality); both bad -> no preference, and both completions are KTO negatives; a tied
  vote without a lead's decision -> nothing (the pair is in the adjudication queue);
- a **rewrite** -> a preference (the rewrite over its original), an SFT target, a KTO positive, and its
  original a KTO negative;
- a **ranking** (groups of completions, best first) -> a preference for every two completions in different
  groups, the top group as SFT targets and KTO positives, the bottom group as KTO negatives.

A pair's weight is its label's agreement: the share of the deciding people who chose it (1.0 for a lead's
decision, gold and a data set's label); ``min_agreement`` leaves out pairs below it. SFT targets are the winners
of pairs, rewrites and the tops of rankings; an SFT target or KTO example appears once per prompt and
completion. Examples of a pair in the frozen test or calibration slice go to that split's own file, never into
train (rewrites and rankings come from selected items, never from slice pairs). Rows are sorted and written
with a fixed layout: the same database gives byte-identical files.
"""

from curate.export.examples import LEFT_OUT, Examples, build_examples
from curate.export.files import LINEAGE, export, render, write_export
from curate.export.formats import FORMATS, SPLITS, Example, ExportFormat, export_format

__all__ = ["FORMATS", "LEFT_OUT", "LINEAGE", "SPLITS", "Example", "Examples", "ExportFormat", "build_examples",
           "export", "export_format", "render", "write_export"]
