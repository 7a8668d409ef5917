"""The config files as JSON Schema (for editors), and a readable check of one deployment."""

import json
from pathlib import Path

from pydantic import BaseModel

from checks.dq_config import DataQualityFile
from cs_assets.actions.rules import ActionRules, ActionsFile, load_action_rules
from cs_assets.deployment import FILES, Deployment
from cs_assets.indicators.catalogue import CatalogueFile
from cs_assets.scoring.model_config import HealthModel, ModelFile, load_model
from cs_assets.sources.contract import SourcesFile
from cs_assets.validation.config import ValidationFile, load_validation_config
from cs_assets.writeback.config import WritebackFile, load_writeback

MODELS: dict[str, type[BaseModel]] = {
    "sources": SourcesFile,
    "indicators": CatalogueFile,
    "model": ModelFile,
    "data_quality": DataQualityFile,
    "actions": ActionsFile,
    "validation": ValidationFile,
    "writeback": WritebackFile,
}


def write_schemas(out: Path) -> list[Path]:
    """`<file>.schema.json` per config file (e.g. health_model.schema.json), deterministic."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, model in MODELS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["title"] = f"cs-health {FILES[kind]}"
        path = out / f"{Path(FILES[kind]).stem}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def load_every_file(deployment: Deployment) -> tuple[HealthModel, ActionRules]:
    """The files a run reads only in its later steps (model, actions, validation), loaded and
    cross-checked now: a command refuses a broken file before its first step, not after the
    published table was rewritten. Raises the first file's config error (file, key, problem)."""
    paths, catalogue = deployment.paths, deployment.catalogue
    model = load_model(paths.model, catalogue)
    rules = load_action_rules(paths.actions, model, catalogue)
    load_validation_config(paths.validation, catalogue)
    return model, rules


def check_deployment(deployment: Deployment) -> list[str]:
    """Every config file of the deployment loaded and cross-checked; what it computes and leaves out.

    Raises the config error of the first invalid file (the message names file, key and problem).
    """
    paths, contract, catalogue = deployment.paths, deployment.contract, deployment.catalogue
    model, rules = load_every_file(deployment)
    lines = [f"config directory {paths.config_dir}: every file is valid"]
    lines.append(f"\nsources ({paths.sources}):")
    for name, spec in contract.sources.items():
        kind = spec.transport.get("kind", "file")
        lines.append(
            f"  {name:<22}{spec.role:<10}{kind:<6}{spec.path} ({spec.file_format}), {len(spec.columns)} columns, key {', '.join(spec.key)}"
        )
    lines.append(f"\nindicators ({paths.indicators}): {len(catalogue.indicators)} computed")
    for name, ind in catalogue.indicators.items():
        scored = next((r for r in model.indicators if r.name == name), None)
        weight = f"weight {scored.weight:g} in {scored.subscore}" if scored is not None else "not scored"
        lines.append(f"  {name:<32}{ind.source or '(ratio)':<20}{weight}")
    for name, why in catalogue.unavailable.items():
        lines.append(f"  {name:<32}not computed: {why}")
    lines.append(
        f"\nmodel ({paths.model}): version {model.version}, {len(model.indicators)} indicators, "
        f"sub-score weights " + ", ".join(f"{s} {w:.2f}" for s, w in model.subscore_weights.items())
    )
    for name, why in model.left_out.items():
        lines.append(f"  left out: {name} ({why}); its weight goes to the other indicators")
    if model.segments:
        from cs_assets.indicators.compute import empty_indicator_schema
        from cs_assets.scoring.model_config import DERIVED_SEGMENT_FIELDS

        columns = [*empty_indicator_schema(contract, catalogue), *DERIVED_SEGMENT_FIELDS]
        for i, segment in enumerate(model.segments):
            for column, _ in segment.when:
                if column not in columns:
                    raise ValueError(
                        f"{paths.model}: `segments[{i}].when.{column}`: not a column of the indicator table "
                        f"(columns: {', '.join(sorted(c for c in columns if c != 'snapshot_date'))})"
                    )
            test = " and ".join(f"{c} in [{', '.join(map(str, v))}]" for c, v in segment.when)
            lines.append(
                f"  segment {segment.name}: {test}; bands from "
                + ", ".join(f"{b.min_score:g}" for b in segment.model.bands)
            )
        lines.append("  default: every other account")
    lines.append(f"\nactions ({paths.actions}): {len(rules.rules)} rules, at most {rules.max_per_run} messages per run")
    if rules.stages is not None:
        entered = ", ".join(f"{r.name} (after {r.enter_after})" for r in rules.stages.rules)
        lines.append(f"  stages: {entered}; otherwise {rules.stages.default}")
    if paths.writeback.is_file():
        writeback = load_writeback(paths.writeback)
        where = (
            f"{writeback.endpoint.format} {writeback.endpoint.url}"
            if writeback.endpoint is not None
            else "dry run (no endpoint): batches go to the outbox file"
        )
        lines.append(
            f"\nCRM write-back ({paths.writeback}): {len(writeback.properties)} properties, "
            f"batches of {writeback.batch_size}, {where}"
        )
    else:
        lines.append(f"\nCRM write-back: none ({paths.writeback} does not exist)")
    if deployment.dq.ignored_sources:
        lines.append(
            f"\ndata quality ({paths.data_quality}): limits for undeclared source(s) ignored: "
            + ", ".join(deployment.dq.ignored_sources)
        )
    return lines
