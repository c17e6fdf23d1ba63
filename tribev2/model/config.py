"""Brain-model configuration, read from the checkpoint's ``config.yaml`` and build arguments.

Nothing here is fixed to the release: every size comes from ``brain_model_config`` (hidden width, heads,
depth, feed-forward multiplier, sequence length, low-rank head, subject layers) and from the build
arguments stored with the weights (modalities in order, layer groups, feature widths, outputs, output steps).
The ``data`` section gives the timing facts (feature rate, TR, hemodynamic offset).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

AVERAGE_SUBJECT = "average"  # the shared row that the reference uses for unseen people


class ConfigError(ValueError):
    """A ``config.yaml`` or build-argument file that cannot describe a TRIBE v2 brain model."""


class _LenientLoader(yaml.SafeLoader):
    """Safe YAML loading that tolerates the Python tags ``yaml.dump`` writes into experiment configs.

    Tuples become lists; any other ``!!python/...`` object (paths, ordered dicts) becomes its plain
    YAML payload. No code is ever executed.
    """


def _construct_python_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python_tag)


def read_yaml(path: str | Path) -> dict:
    """Read an experiment ``config.yaml`` (safe loading, Python tags tolerated)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_LenientLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level, found {type(data).__name__}")
    return data


# Options of the reference encoder that the released model does not use and this runtime does not implement.
_UNSUPPORTED_ENCODER_FLAGS = (
    "cross_attend",
    "causal",
    "rel_pos_bias",
    "alibi_pos_bias",
    "rotary_xpos",
    "residual_attn",
    "use_rmsnorm",
)


@dataclasses.dataclass(frozen=True)
class BrainConfig:
    """Everything needed to build :class:`tribev2.model.TribeModel` and to place its outputs in time."""

    feature_dims: dict[str, tuple[int, int]]  # modality -> (layer groups, width), in checkpoint order
    n_outputs: int  # vertices (left hemisphere first)
    n_output_timesteps: int  # output TRs per window
    hidden: int = 1152
    depth: int = 8
    heads: int = 8
    ff_mult: int = 4
    max_seq_len: int = 1024
    scale_residual: bool = True
    rotary_pos_emb: bool = True
    time_pos_embedding: bool = True
    extractor_aggregation: str = "cat"
    low_rank_head: int | None = 2048
    n_subject_rows: int = 1
    subject_names: tuple[str, ...] = (AVERAGE_SUBJECT,)  # one per row, stored with the weights
    default_subject: str = AVERAGE_SUBJECT  # the row used when none is asked for
    # fitted rows: name -> flat record (fitted from what, when, penalties), stored with the weights
    subject_provenance: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    feature_rate_hz: float = 2.0
    tr_s: float = 1.0
    hemodynamic_offset_s: float = 5.0

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.feature_dims)

    @property
    def dim_head(self) -> int:
        return self.hidden // self.heads

    @property
    def rotary_dim(self) -> int:
        # The reference rotates the first max(dim_head // 2, 32) dimensions of each head.
        return max(self.dim_head // 2, 32)

    @property
    def projector_width(self) -> int:
        if self.extractor_aggregation == "cat":
            return self.hidden // len(self.feature_dims)
        return self.hidden

    @property
    def window_s(self) -> float:
        return self.n_output_timesteps * self.tr_s

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.feature_rate_hz)

    def to_build_args(self) -> dict:
        return {
            "feature_dims": {m: list(v) for m, v in self.feature_dims.items()},
            "n_outputs": self.n_outputs,
            "n_output_timesteps": self.n_output_timesteps,
            "subject_names": list(self.subject_names),
            "default_subject": self.default_subject,
            **(
                {"subject_provenance": {n: dict(r) for n, r in self.subject_provenance.items()}}
                if self.subject_provenance
                else {}
            ),
        }

    def to_experiment(self) -> dict:
        """A minimal ``config.yaml`` mapping that :meth:`from_files` reads back to this configuration (for
        models built from a config rather than loaded)."""
        return {
            "brain_model_config": {
                "hidden": self.hidden,
                "max_seq_len": self.max_seq_len,
                "time_pos_embedding": self.time_pos_embedding,
                "extractor_aggregation": self.extractor_aggregation,
                "low_rank_head": self.low_rank_head,
                "encoder": {
                    "depth": self.depth,
                    "heads": self.heads,
                    "ff_mult": self.ff_mult,
                    "scale_residual": self.scale_residual,
                    "rotary_pos_emb": self.rotary_pos_emb,
                },
            },
            "data": {
                "frequency": self.feature_rate_hz,
                "neuro": {"frequency": 1.0 / self.tr_s, "offset": self.hemodynamic_offset_s},
            },
        }

    @classmethod
    def from_files(
        cls,
        experiment: Mapping[str, Any],
        build_args: Mapping[str, Any],
        *,
        source: str = "config.yaml",
        n_subject_rows: int | None = None,
    ) -> BrainConfig:
        """Combine a parsed ``config.yaml`` with the build arguments stored beside the weights.

        ``n_subject_rows`` is the row count of the stored subject layer, when known. Subject rows are named by
        ``subject_names`` in the build arguments (written by ``save_pretrained``); checkpoints without names
        (the hub's ``best.ckpt``) call the training rows ``"0"``, ``"1"``, ... and the last row ``"average"``.
        """
        brain = experiment.get("brain_model_config")
        if not isinstance(brain, Mapping):
            raise ConfigError(f"{source}: no 'brain_model_config' section; this is not a TRIBE v2 experiment config")
        _check_supported(brain, source)
        encoder = brain.get("encoder") or {}
        subject_layers = brain.get("subject_layers") or {}
        data = experiment.get("data") or {}
        neuro = data.get("neuro") or {}

        feature_dims = _parse_feature_dims(build_args, source)
        for key in ("n_outputs", "n_output_timesteps"):
            if key not in build_args:
                raise ConfigError(f"{source}: build arguments lack '{key}'")

        # Training builds one row per subject plus, with subject dropout, the shared "average subject" row.
        # The reference's inference forces average_subjects and keeps that last row only; released
        # checkpoints hold either just it or all rows.
        n_subjects = int(subject_layers.get("n_subjects", 0) or 0)
        all_rows = n_subjects + (1 if subject_layers.get("subject_dropout") else 0)
        allowed_rows = {1, max(1, all_rows)}
        if build_args.get("subject_names") is not None:  # rows named with the weights (fitted rows added)
            allowed_rows = {len(build_args["subject_names"])}
        if n_subject_rows is None:
            n_subject_rows = max(allowed_rows)
        elif n_subject_rows not in allowed_rows:
            raise ConfigError(
                f"{source}: the weights hold {n_subject_rows} subject row(s); subject_layers "
                f"(n_subjects={n_subjects}) allows {sorted(allowed_rows)}"
            )

        names = _subject_names(build_args, n_subject_rows, source)
        default = str(build_args.get("default_subject") or AVERAGE_SUBJECT)
        if default not in names:
            raise ConfigError(f"{source}: default_subject {default!r} is not one of the subject rows {names}")

        config = cls(
            feature_dims=feature_dims,
            n_outputs=int(build_args["n_outputs"]),
            n_output_timesteps=int(build_args["n_output_timesteps"]),
            hidden=int(brain.get("hidden", 256)),
            depth=int(encoder.get("depth", 12)),
            heads=int(encoder.get("heads", 8)),
            ff_mult=int(encoder.get("ff_mult", 4)),
            max_seq_len=int(brain.get("max_seq_len", 1024)),
            scale_residual=bool(encoder.get("scale_residual", True)),
            rotary_pos_emb=bool(encoder.get("rotary_pos_emb", True)),
            time_pos_embedding=bool(brain.get("time_pos_embedding", True)),
            extractor_aggregation=str(brain.get("extractor_aggregation", "cat")),
            low_rank_head=int(brain["low_rank_head"]) if brain.get("low_rank_head") else None,
            n_subject_rows=n_subject_rows,
            subject_names=names,
            default_subject=default,
            subject_provenance=_subject_provenance(build_args, names, source),
            feature_rate_hz=float(data.get("frequency", 2.0)),
            tr_s=1.0 / float(neuro.get("frequency", 1.0)),
            hemodynamic_offset_s=float(neuro.get("offset", 5.0)),
        )
        _check_geometry(config, source)
        return config


def _parse_feature_dims(build_args: Mapping[str, Any], source: str) -> dict[str, tuple[int, int]]:
    raw = build_args.get("feature_dims")
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{source}: build arguments lack 'feature_dims' (modality -> (layer groups, width))")
    dims = {}
    for name, value in raw.items():
        if value is None:
            continue  # a modality the checkpoint was built without
        if isinstance(value, int):
            value = (1, value)
        if len(value) != 2:
            raise ConfigError(f"{source}: feature_dims['{name}'] should be (layer groups, width), found {value!r}")
        dims[str(name)] = (int(value[0]), int(value[1]))
    return dims


def _subject_names(build_args: Mapping[str, Any], n_rows: int, source: str) -> tuple[str, ...]:
    stored = build_args.get("subject_names")
    if stored is None:
        return tuple(str(i) for i in range(n_rows - 1)) + (AVERAGE_SUBJECT,)
    names = tuple(str(name) for name in stored)
    if len(names) != n_rows or len(set(names)) != n_rows:
        raise ConfigError(f"{source}: subject_names {list(names)} must name each of the {n_rows} subject row(s) once")
    return names


def _subject_provenance(build_args: Mapping[str, Any], names: tuple[str, ...], source: str) -> dict:
    stored = build_args.get("subject_provenance") or {}
    if not isinstance(stored, Mapping) or not all(isinstance(r, Mapping) for r in stored.values()):
        raise ConfigError(f"{source}: subject_provenance must map subject names to records")
    unknown = sorted(set(stored) - set(names))
    if unknown:
        raise ConfigError(f"{source}: subject_provenance names {unknown}, which are not subject rows {list(names)}")
    return {str(n): dict(r) for n, r in stored.items()}


def _check_supported(brain: Mapping[str, Any], source: str) -> None:
    problems = []
    if brain.get("combiner"):
        problems.append("combiner (the release has none)")
    if brain.get("temporal_smoothing"):
        problems.append("temporal_smoothing")
    if brain.get("subject_embedding"):
        problems.append("subject_embedding")
    if brain.get("linear_baseline"):
        problems.append("linear_baseline")
    if brain.get("layer_aggregation", "cat") != "cat":
        problems.append(f"layer_aggregation={brain.get('layer_aggregation')!r} (only 'cat')")
    if brain.get("extractor_aggregation", "cat") not in ("cat", "sum"):
        problems.append(f"extractor_aggregation={brain.get('extractor_aggregation')!r} (only 'cat' or 'sum')")
    projector = brain.get("projector") or {}
    if projector.get("hidden_sizes"):
        problems.append("a projector with hidden layers (the release uses a plain linear projector)")
    encoder = brain.get("encoder") or {}
    problems += [f"encoder.{flag}" for flag in _UNSUPPORTED_ENCODER_FLAGS if encoder.get(flag)]
    if not encoder.get("use_scalenorm", True):
        problems.append("encoder.use_scalenorm=false (the release uses ScaleNorm)")
    if problems:
        raise ConfigError(
            f"{source}: brain_model_config uses options this runtime does not implement: " + ", ".join(problems)
        )


def _check_geometry(config: BrainConfig, source: str) -> None:
    if config.hidden % config.heads:
        raise ConfigError(f"{source}: hidden={config.hidden} is not divisible by heads={config.heads}")
    if config.extractor_aggregation == "cat" and config.hidden % len(config.feature_dims):
        raise ConfigError(
            f"{source}: hidden={config.hidden} is not divisible by the "
            f"{len(config.feature_dims)} modalities {list(config.feature_dims)}"
        )
    if config.rotary_pos_emb and config.dim_head < 32:
        raise ConfigError(
            f"{source}: rotary embeddings need heads of at least 32 dimensions, "
            f"found hidden {config.hidden} / heads {config.heads} = {config.dim_head}"
        )
    if not math.isfinite(config.feature_rate_hz) or config.feature_rate_hz <= 0:
        raise ConfigError(f"{source}: data.frequency must be a positive rate in Hz")
