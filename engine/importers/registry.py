"""The one list of native formats. Detection (engine.importers.detect), the Import page's caption
and the CLI's ``import --format`` choices and help all read it, so a new format is its module's
``IMPORTER`` plus one entry here. Order matters: detection takes the first entry whose sniff says
yes, among those that read the file's kind (JSON object, JSON Lines record, CSV header, Parquet)."""
from __future__ import annotations

from engine import exchange
from engine.importers import Importer, codecarbon, lmeval, mlenergy, optimum, power_log, tabular, vllm

IMPORTERS: list[Importer] = [
    optimum.IMPORTER,
    optimum.CONFIG_IMPORTER,
    codecarbon.IMPORTER,
    lmeval.IMPORTER,
    mlenergy.IMPORTER,
    exchange.IMPORTER,
    power_log.NVIDIA_SMI_IMPORTER,
    power_log.ZEUS_IMPORTER,
    vllm.IMPORTER,
]

BY_NAME = {i.name: i for i in IMPORTERS}
LISTED = [i for i in IMPORTERS if i.listed]
NATIVE = tuple(i.name for i in LISTED)
FORMATS = NATIVE + tabular.FORMATS  # every --format choice: the native formats, then plain tables


def sniff(reads: str, head) -> str | None:
    """The name of the first importer that reads this kind of head and recognises it, else None."""
    return next((i.name for i in IMPORTERS if i.takes(reads) and i.sniff(head)), None)


def kinds(reads: str) -> str:
    """The listed kinds that read this head, for a message: 'optimum-benchmark, lm-eval, ML.ENERGY'."""
    return ", ".join(i.kind for i in LISTED if i.takes(reads))
