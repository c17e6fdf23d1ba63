"""Long names of atlas regions: ``V1`` is "Primary Visual Cortex", ``p9-46v`` "Area posterior 9-46v".

Atlas files name regions by short codes. The package ships a table of their long names
(``tribev2.data/region_names.tsv``: HCP-MMP1 after Glasser et al. 2016's supplementary neuroanatomical results,
with the cortex (one of 22 groups) each area belongs to; Desikan-Killiany), read once, offline.
Atlases without a table keep their codes.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

TABLE = "region_names.tsv"


@functools.cache
def _table() -> dict[str, dict[str, tuple[str, str]]]:
    """``{atlas: {region: (long name, group)}}``."""
    text = resources.files("tribev2.data").joinpath(TABLE).read_text(encoding="utf-8")
    rows = csv.DictReader((line for line in text.splitlines() if not line.startswith("#")), delimiter="\t")
    table: dict[str, dict[str, tuple[str, str]]] = {}
    for row in rows:
        table.setdefault(row["atlas"], {})[row["region"]] = (row["long_name"], row["group"])
    return table


def long_names(atlas: str | None) -> dict[str, str]:
    """``{region code: long name}`` of the atlas named ``atlas`` (empty for an atlas the table lacks)."""
    return {code: long for code, (long, _) in _table().get(atlas or "", {}).items()}


def region_groups(atlas: str | None) -> dict[str, str]:
    """``{region code: group}``: for HCP-MMP1 the cortex of each area ("Early Visual", "Auditory Association"...)."""
    return {code: group for code, (_, group) in _table().get(atlas or "", {}).items() if group}


def describe(region: str, atlas: str | None) -> str:
    """``"V1 · Primary Visual Cortex"``, or the code alone when the table has no long name for it."""
    long = long_names(atlas).get(region)
    return f"{region} · {long}" if long and long.lower() != region.lower() else region
